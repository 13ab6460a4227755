#!/usr/bin/env bash
# Images from sounds outside ComfyUI, on a fresh machine: sets up the venv, then runs `python -m train.generate`.
# Missing model files are listed with where to put them; nothing is downloaded from a model hub.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=train source scripts/env.sh
exec "$VENV/bin/python" -m train.generate "$@"
