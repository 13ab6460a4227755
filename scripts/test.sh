#!/usr/bin/env bash
# The project's test command: from nothing to a test run, in three legs.
#   core    makes its venv (AUDIOTOKEN_VENV, default .venv: the torch triple of scripts/env.sh, torchaudio
#           included for the tests that compare against it) and runs the core, trainer and evaluation tests;
#   hosts   runs the host tests (tests/host: in-process, real server, real frontend in headless Chromium) once per
#           ComfyUI tree in AUDIOTOKEN_HOSTS (default: every tree in ../shared/hosts/), each in its own venv with
#           the host's pinned requirements layered over the core venv (scripts/host_env.sh);
#   newest  the newest torch on PyPI (read at run time) with NO torchaudio installed (scripts/newest_torch_env.sh,
#           venv .venv-newest-torch): the core suite, then tests/host/test_no_torchaudio.py on the trees in
#           AUDIOTOKEN_NEWEST_HOSTS (default: every tree in ../shared/hosts/; about half a minute each).
# AUDIOTOKEN_LEGS picks the legs (default "core hosts newest"): `AUDIOTOKEN_LEGS=newest bash scripts/test.sh`
# runs only the third one.
# Arguments go to pytest and select tests: `bash scripts/test.sh tests/test_audio.py` runs only that file in the
# core leg, with no host runs and no newest leg (unless AUDIOTOKEN_LEGS names it);
# `bash scripts/test.sh tests/host/test_inprocess_splice.py` runs that file on every host; in the newest leg,
# core arguments replace its core suite and host arguments its node test
# (`AUDIOTOKEN_LEGS=newest bash scripts/test.sh tests/host/test_no_torchaudio.py`: only the node test).
# A host test that skips fails the run whenever the host matrix runs (so CI never passes on skipped host tests).
# The closing summary names each leg's torch version, its counts and its minutes (scripts/test_summary.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT

host_args=() core_args=()
for arg in "$@"; do
    case "$arg" in tests/host*) host_args+=("$arg") ;; *) core_args+=("$arg") ;; esac
done
if [ -n "${AUDIOTOKEN_LEGS:-}" ]; then
    legs=" ${AUDIOTOKEN_LEGS//,/ } "
elif [ $# -eq 0 ]; then
    legs=" core hosts newest "
else
    legs=" "
    [ ${#core_args[@]} -eq 0 ] || legs+="core "
    [ ${#host_args[@]} -eq 0 ] || legs+="hosts "
fi
status=0

# run NAME LABEL PYTHON PYTEST-ARGS...: one pytest run, its JUnit report, and a note of its torch and minutes.
run() {
    local name="$1" label="$2" py="$3"
    shift 3
    local start=$SECONDS rc=0
    "$py" -m pytest -q --junitxml="$reports/$name.xml" "$@" || rc=1
    "$py" - "$reports/$name.json" "$label" $((SECONDS - start)) <<'EOF'
import json, sys, torch
try:
    import torchaudio
    audio = torchaudio.__version__
except ImportError:
    audio = None
json.dump({"label": sys.argv[2], "torch": torch.__version__, "torchaudio": audio, "seconds": int(sys.argv[3])},
          open(sys.argv[1], "w"))
EOF
    return $rc
}

if [[ "$legs" == *" core "* ]]; then
    run core core "$VENV/bin/python" --ignore=tests/host "${core_args[@]:-tests}" || status=1
fi

host_matrix() {
    # host_matrix TREES PREFIX TESTS...: the host tests on each tree, with the host venv over $VENV.
    local trees="$1" prefix="$2"
    shift 2
    for tree in $trees; do
        eval "$(bash scripts/host_env.sh "$tree")"
        name="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$tree/comfyui_version.py")"
        echo "=== ${prefix:+$prefix }host tests on ComfyUI $name ($tree)"
        COMFYUI_PATH="$COMFYUI_PATH" AUDIOTOKEN_STRICT_HOST=1 \
            run "${prefix:+$prefix-}host-$name" "${prefix:+$prefix }ComfyUI $name" "$HOST_PYTHON" "$@" || status=1
    done
}

if [[ "$legs" == *" hosts "* ]]; then
    hosts="${AUDIOTOKEN_HOSTS:-$(ls -d ../shared/hosts/*/ 2>/dev/null || true)}"
    if [ -z "$hosts" ]; then
        echo "No ComfyUI trees found (../shared/hosts/ or AUDIOTOKEN_HOSTS): host tests NOT run." >&2
        if [ -n "${CI:-}" ]; then status=1; fi
    fi
    if [ -n "$hosts" ] && ! command -v chromium >/dev/null; then
        # The real-frontend tests drive Debian's Chromium (no browser download: only package registries are reachable).
        { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null 2>&1 \
            || echo "Could not install chromium (apt-get): the real-frontend host tests will fail." >&2
    fi
    host_matrix "$hosts" "" "${host_args[@]:-tests/host}"
fi

newest_env=""
if [[ "$legs" == *" newest "* ]]; then
    start=$SECONDS
    # A leg whose venv cannot be made (no index reachable, say) fails the run, and the other legs still report.
    newest_env="$(bash scripts/newest_torch_env.sh)" \
        || { echo "newest-torch leg NOT run: scripts/newest_torch_env.sh failed" >&2; status=1; newest_env=""; }
fi
if [ -n "$newest_env" ]; then
    eval "$newest_env"
    echo "=== newest-torch leg: venv ready in $((SECONDS - start)) s ($NEWEST_VENV)"
    if [ $# -eq 0 ] || [ ${#core_args[@]} -gt 0 ]; then
        run newest-core "newest torch: core" "$NEWEST_VENV/bin/python" --ignore=tests/host "${core_args[@]:-tests}" \
            || status=1
    fi
    newest_hosts="${AUDIOTOKEN_NEWEST_HOSTS:-$(ls -d ../shared/hosts/*/ 2>/dev/null || true)}"
    if [ -z "$newest_hosts" ]; then
        echo "No ComfyUI tree for the newest-torch leg (AUDIOTOKEN_NEWEST_HOSTS): its node test NOT run." >&2
        if [ -n "${CI:-}" ]; then status=1; fi
    fi
    # The host venvs of this leg sit over its venv, and keep its torch (the constraints file pins it).
    if [ $# -eq 0 ] || [ ${#host_args[@]} -gt 0 ]; then
        AUDIOTOKEN_VENV="$NEWEST_VENV" PIP_CONSTRAINT="$NEWEST_CONSTRAINT" \
            host_matrix "$newest_hosts" newest "${host_args[@]:-tests/host/test_no_torchaudio.py}"
    fi
fi

"$VENV/bin/python" scripts/test_summary.py "$reports"/*.xml || status=1
exit $status
