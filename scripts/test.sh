#!/usr/bin/env bash
# The project's test command: from nothing to a test run. Makes its own venv (AUDIOTOKEN_VENV, default .venv),
# installs what the tests need, then runs pytest. Host tests run only when COMFYUI_PATH names a ComfyUI checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if [ -n "${COMFYUI_PATH:-}" ]; then
    # ComfyUI imports requests without listing it (contract doc §7.2)
    "${PIP[@]}" -r "$COMFYUI_PATH/requirements.txt" requests "${KEEP[@]}"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "$VENV/bin/python" -m pytest -q "$@"
