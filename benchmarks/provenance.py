"""Where and when a benchmark ran, as the one line each table in docs/benchmarks.md carries above it:

    Measured at commit `9c76d66` on 2026-12-03, on 2-core x86_64 (AMD EPYC), 23 GiB, ..., by `python -m ...`.

A benchmark prints `line(...)` first, so its table can be pasted with where it came from;
tests/test_docs_examples.py checks that every table there has such a line (the same `PATTERN`).
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATTERN = re.compile(
    r"Measured at commit `(?P<commit>[0-9a-f]{7,40})`(?P<dirty>[^`]*?) on (?P<date>\d{4}-\d{2}-\d{2}), "
    r"on (?P<machine>.+?), by `(?P<command>[^`]+)`"
)


def commit() -> str:
    """The short commit of the checkout, and ' (with uncommitted changes)' when tracked files differ from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", False
    return f"`{head or 'unknown'}`" + (" (with uncommitted changes)" if dirty else "")


def cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return f"{pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        return "memory unknown"


def machine(threads) -> str:
    import torch

    counts = " and ".join(str(n) for n in threads)
    parts = [f"{os.cpu_count()}-core {platform.machine()} ({cpu_model()})", memory_gib(),
             f"{platform.system()}", f"torch {torch.__version__}", f"Python {platform.python_version()}",
             f"{counts} torch thread{'s' if counts != '1' else ''}"]
    if torch.cuda.is_available():
        parts.insert(1, torch.cuda.get_device_name())
    if hasattr(os, "getloadavg"):
        parts.append("load average " + "/".join(f"{x:.1f}" for x in os.getloadavg()))
    host = os.environ.get("COMFYUI_PATH")
    if host:
        version = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", _read(Path(host) / "comfyui_version.py"))
        parts.append(f"ComfyUI {version.group(1) if version else '(version unknown)'}")
    return ", ".join(parts)


def command(argv=None) -> str:
    """How this process was started, as a user would type it (a ComfyUI path shown as a placeholder)."""
    argv = sys.argv if argv is None else argv
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None else ["python", argv[0]]
    env = "COMFYUI_PATH=/path/to/ComfyUI " if os.environ.get("COMFYUI_PATH") else ""
    return env + shlex.join(head + list(argv[1:]))


def line(threads=(None,), argv=None) -> str:
    """The provenance line of a table measured now by this process (`threads`: the torch thread counts used)."""
    import torch

    threads = [torch.get_num_threads() if n is None else n for n in threads]
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return f"Measured at commit {commit()} on {today}, on {machine(threads)}, by `{command(argv)}`."


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
