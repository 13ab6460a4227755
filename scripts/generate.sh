#!/usr/bin/env bash
# Images from sounds outside ComfyUI, the main job in one command:
#   bash scripts/generate.sh --audio dog.wav [--prompt "a photo of <audio>"] [--out out/]
# On a fresh machine it makes the venv first (scripts/env.sh); a venv that already runs the generator is used as
# it is, so the command also works offline. The official model files that are missing (SD 1.5, the Embedder,
# BEATs) are downloaded into a cache (--cache-dir, $AUDIOTOKEN_CACHE, default ~/.cache/audiotoken) and verified
# before use; --no-download lists them with where to put them instead. Paths are relative to where you run it.
set -euo pipefail
CALLER="$PWD"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VENV="${AUDIOTOKEN_VENV:-.venv}"
if ! "$VENV/bin/python" -c "import diffusers, transformers, av, tqdm, huggingface_hub, PIL" 2>/dev/null; then
    EXTRAS=train source scripts/env.sh
fi
PY="$(cd "$VENV" && pwd)/bin/python"
cd "$CALLER"
# The checkout's own code, whatever the venv has installed; the user's relative paths stay relative to CALLER.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m train.generate "$@"
