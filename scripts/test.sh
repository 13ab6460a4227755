#!/usr/bin/env bash
# The project's test command: from nothing to a test run. Makes its own venv (AUDIOTOKEN_VENV, default .venv),
# installs what the tests need, then runs pytest. Host tests run only when COMFYUI_PATH names a ComfyUI checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AUDIOTOKEN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# The torch triple that works with ComfyUI here, installed first so no later package picks another build.
# (This pins the test environment only; the pack itself pins nothing the host provides.)
if ! "$VENV/bin/python" -c "import torch, torchaudio, torchvision" 2>/dev/null; then
    "${PIP[@]}" torch==2.9.1 torchvision==0.24.1
    "${PIP[@]}" torch==2.9.1 "torchaudio==2.9.*"
fi
KEEP=(torch==2.9.1 torchvision==0.24.1 "torchaudio==2.9.*")
"${PIP[@]}" -e ".[train,eval,dev]" "${KEEP[@]}"
if [ -n "${COMFYUI_PATH:-}" ]; then
    # ComfyUI imports requests without listing it (see docs/testing.md)
    "${PIP[@]}" -r "$COMFYUI_PATH/requirements.txt" requests "${KEEP[@]}"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec "$VENV/bin/python" -m pytest -q "$@"
