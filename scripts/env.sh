# Sourced by the scripts here: make (once) and activate the project's venv.
# AUDIOTOKEN_VENV picks its folder (default .venv); EXTRAS the pip extras to install.
set -euo pipefail
VENV="${AUDIOTOKEN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-train,eval,dev}"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# PIP_QUIET="" shows pip's progress bars (scripts/generate.sh's first setup); quiet by default.
PIP=("$VENV/bin/python" -m pip install ${PIP_QUIET--q} --disable-pip-version-check)

# The torch triple that works with ComfyUI here, installed first so no later package picks another build.
# (This pins the project's own venv only; the pack itself pins nothing the host provides and needs no
# torchaudio: it is here, and in the dev extra, for the tests that compare the pack's own fbank, resampler and
# spectrogram against it. scripts/newest_torch_env.sh makes the venv without it.)
if ! "$VENV/bin/python" -c "import torch, torchaudio, torchvision" 2>/dev/null; then
    "${PIP[@]}" torch==2.9.1 torchvision==0.24.1
    "${PIP[@]}" torch==2.9.1 "torchaudio==2.9.*"
fi
KEEP=(torch==2.9.1 torchvision==0.24.1 "torchaudio==2.9.*")
"${PIP[@]}" -e ".[$EXTRAS]" "${KEEP[@]}"
