"""Where ComfyUI is and how to import it into the test process (host contract §9)."""

from __future__ import annotations

import os
from pathlib import Path

from testkit.host import comfy_in_process as in_process

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
SKIP_REASON = "host tests need a ComfyUI checkout: set COMFYUI_PATH=/path/to/ComfyUI (0.3.64 tested)"


def comfy_in_process() -> Path:
    """Make ComfyUI importable in this process; idempotent. Tests always run the host on the CPU."""
    return in_process(COMFYUI_PATH, cpu=True)
