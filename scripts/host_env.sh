#!/usr/bin/env bash
# Make a ComfyUI tree ready for the host tests: `bash scripts/host_env.sh TREE` prints two lines,
#   COMFYUI_PATH=<a writable copy of TREE>
#   HOST_PYTHON=<a venv's python that runs it>
# The venv layers the host's own pinned requirements (tests/host/requirements/<version>.txt, from PyPI) over
# the project's venv, so torch is installed once and each host keeps its own frontend and transformers.
# TREE may be read-only (CI's shared/ is): it is copied under .hosts/<version>/ first.
set -euo pipefail
cd "$(dirname "$0")/.."
tree="$(cd "$1" && pwd)"
BASE_VENV="$(cd "${AUDIOTOKEN_VENV:-.venv}" && pwd)"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$tree/comfyui_version.py")"
[ -n "$version" ] || { echo "no comfyui_version.py in $tree: not a ComfyUI tree" >&2; exit 2; }
home="$PWD/.hosts/$version"
# One host venv per base venv (the newest-torch leg layers its own over .venv-newest-torch).
[ "$BASE_VENV" = "$PWD/.venv" ] || home="$home-$(basename "$BASE_VENV")"
mkdir -p "$home"

# A fresh copy each run: the host writes caches and bytecode next to its sources.
rm -rf "$home/ComfyUI"
cp -r "$tree" "$home/ComfyUI"
chmod -R u+w "$home/ComfyUI"

venv="$home/venv"
if [ ! -x "$venv/bin/python" ]; then
    "$BASE_VENV/bin/python" -m venv "$venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
base_site="$("$BASE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# Runs at start-up: the project's venv comes after the host's own packages, with its .pth files applied.
echo "import site; site.addsitedir('$base_site')" > "$site/_audiotoken_base_venv.pth"

pinned="tests/host/requirements/$version.txt"
stamp="$venv/.installed-$( (cat "$pinned" "$tree/requirements.txt" 2>/dev/null || true) | sha1sum | cut -c1-12)"
if [ ! -e "$stamp" ]; then
    pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
    if [ -f "$pinned" ]; then
        "${pip[@]}" -r "$pinned" >&2
    else
        # A tree with no pinned list yet: its own requirements (ComfyUI imports requests without listing it).
        echo "note: no $pinned; installing $tree/requirements.txt unpinned" >&2
        "${pip[@]}" -r "$tree/requirements.txt" requests torch torchvision torchaudio >&2
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
echo "COMFYUI_PATH=$home/ComfyUI"
echo "HOST_PYTHON=$venv/bin/python"
