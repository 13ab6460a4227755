#!/usr/bin/env bash
# The third CI leg's venv: the newest torch on PyPI and NO torchaudio, as a fresh ComfyUI install has it now
# (ComfyUI 0.38 dropped torchaudio, and torchaudio's last release pins an older torch, so it cannot be added).
#   `bash scripts/newest_torch_env.sh` makes (once) and updates the venv, and prints two lines:
#     NEWEST_VENV=<its folder>            (AUDIOTOKEN_NEWEST_VENV, default .venv-newest-torch)
#     NEWEST_CONSTRAINT=<constraints file> (torch pinned to what was installed; use it for every later pip)
# The version is read from PyPI at run time, never written here. The packages are the project's extras with
# torchaudio taken out of `dev` (read from pyproject.toml, so the lists live in one place).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AUDIOTOKEN_NEWEST_VENV:-.venv-newest-torch}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" >&2
VENV="$(cd "$VENV" && pwd)"
py="$VENV/bin/python"

# This machine's pip config caps torch (constraint = /etc/xdg/pip/constraints.txt: the releases on its disk).
# The leg is about the newest release, so it replaces that cap with a constraints file of its own, which also
# keeps every later install (extras, the host's requirements) from moving torch. Index and find-links settings
# stay as configured. PIP_CONSTRAINT in the environment overrides the config file's `constraint`.
constraint="$VENV/constraints.txt"
: > "$constraint"
export PIP_CONSTRAINT="$constraint"
pip=("$py" -m pip install -q --disable-pip-version-check)

newest="$("$py" -m pip index versions torch 2>/dev/null | sed -n 's/^torch (\(.*\))$/\1/p')"
[ -n "$newest" ] || { echo "could not read the newest torch from the package index (pip index versions torch)" >&2; exit 2; }
echo "torch==$newest" > "$constraint"

have="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)"
if [ "$have" != "$newest" ]; then
    start=$(date +%s)
    # torchvision: whichever release accepts this torch (pytorch-fid in the eval extra needs it; so does ComfyUI).
    "${pip[@]}" "torch==$newest" torchvision >&2
    echo "newest-torch leg: installed torch $newest (+ torchvision) in $(( $(date +%s) - start )) s" >&2
fi

extras="$("$py" - <<'EOF'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
keep = [r for name in ("train", "eval", "dev") for r in extras[name]
        if re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() != "torchaudio"]
print("\n".join(dict.fromkeys(keep)))
EOF
)"
stamp="$VENV/.installed-$( (cat pyproject.toml; echo "$newest") | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
    mapfile -t reqs <<< "$extras"
    "${pip[@]}" -e . "${reqs[@]}" >&2
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
if "$py" -c "import torchaudio" 2>/dev/null; then
    echo "torchaudio is importable in $VENV; this leg must run without it" >&2
    exit 2
fi
echo "NEWEST_VENV=$VENV"
echo "NEWEST_CONSTRAINT=$constraint"
