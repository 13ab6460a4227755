#!/usr/bin/env bash
# The project's test command: from nothing to a test run.
#   1. makes its venv (AUDIOTOKEN_VENV, default .venv) and installs what the tests need;
#   2. runs the core, trainer and evaluation tests;
#   3. runs the host tests (tests/host: in-process, real server, real frontend in headless Chromium) once per
#      ComfyUI tree in AUDIOTOKEN_HOSTS (default: every tree in ../shared/hosts/), each in its own venv with the
#      host's pinned requirements (scripts/host_env.sh).
# Arguments go to pytest and select tests: `bash scripts/test.sh tests/test_audio.py` runs only that file, with
# no host runs; `bash scripts/test.sh tests/host/test_inprocess_splice.py` runs that file on every host.
# A host test that skips fails the run whenever the host matrix runs (so CI never passes on skipped host tests).
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
status=0

if [ $# -eq 0 ] || [ ${#core_args[@]} -gt 0 ]; then
    "$VENV/bin/python" -m pytest -q --ignore=tests/host --junitxml="$reports/core.xml" \
        "${core_args[@]:-tests}" || status=1
fi

if [ $# -eq 0 ] || [ ${#host_args[@]} -gt 0 ]; then
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
    for tree in $hosts; do
        eval "$(bash scripts/host_env.sh "$tree")"
        name="$(basename "$(dirname "$COMFYUI_PATH")")"
        echo "=== host tests on ComfyUI $name ($tree)"
        COMFYUI_PATH="$COMFYUI_PATH" AUDIOTOKEN_STRICT_HOST=1 "$HOST_PYTHON" -m pytest -q \
            --junitxml="$reports/host-$name.xml" "${host_args[@]:-tests/host}" || status=1
    done
fi

"$VENV/bin/python" scripts/test_summary.py "$reports"/*.xml || status=1
exit $status
