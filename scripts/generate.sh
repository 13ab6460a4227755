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
for arg in "$@"; do
    if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
        # At once and without a venv: the options are stdlib dataclasses (train/generate_config.py), so the
        # system Python prints them before torch is installed.
        python3 -c 'from train.generate_config import build_parser; build_parser().print_help()'
        echo
        echo "The first run makes a Python environment in $VENV (torch 2.9.1, diffusers, transformers, ...)."
        exit 0
    fi
done
if ! "$VENV/bin/python" -c "import diffusers, transformers, av, tqdm, huggingface_hub, PIL" 2>/dev/null; then
    echo "First run: making the Python environment in $VENV: torch 2.9.1 + torchvision + torchaudio, diffusers," >&2
    echo "transformers, accelerate, av and the pack. From PyPI the torch wheels carry the CUDA libraries: about" >&2
    echo "3 GB to download and about 7 GB on disk (CPU wheels: about 1 GB). This takes a few minutes." >&2
    if ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
        echo "No NVIDIA GPU found: the default torch wheels include CUDA libraries (several GB) this machine" >&2
        echo "cannot use. For CPU wheels, stop now (Ctrl-C) and run:" >&2
        echo "  PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/generate.sh ..." >&2
    fi
    # pip's own progress bars (env.sh is quiet for the test scripts)
    PIP_QUIET="" EXTRAS=train source scripts/env.sh
fi
PY="$(cd "$VENV" && pwd)/bin/python"
cd "$CALLER"
# The checkout's own code, whatever the venv has installed; the user's relative paths stay relative to CALLER.
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m train.generate "$@"
