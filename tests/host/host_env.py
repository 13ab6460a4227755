"""Where ComfyUI is and how to import it into the test process (host contract §9)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
SKIP_REASON = "host tests need a ComfyUI checkout: set COMFYUI_PATH=/path/to/ComfyUI (0.3.64 tested)"


def comfy_in_process() -> Path:
    """Make ComfyUI importable in this process (host contract §9); idempotent."""
    root = Path(COMFYUI_PATH).resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from comfy.cli_args import args

    # Arg parsing is off outside main.py; without this a CUDA torch on a GPU-less machine fails to import
    # comfy.model_management. Tests always run the host on the CPU.
    args.cpu = True
    import comfy.model_management  # noqa: F401

    return root
