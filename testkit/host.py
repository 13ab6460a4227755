"""ComfyUI in this process and the pack imported the way ComfyUI imports it (host contract §9), without a server.

For host tests and benchmarks of the nodes; `root` is a ComfyUI checkout (tests pass COMFYUI_PATH).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The name the pack is imported under: not `nodes` (ComfyUI's own module), and no folder name, as in custom_nodes/.
PACK = "audiotoken_pack_under_test"


def comfy_in_process(root: str | Path, cpu: bool = True) -> Path:
    """Make ComfyUI at `root` importable in this process; idempotent."""
    root = Path(root).resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from comfy.cli_args import args

    # Arg parsing is off outside main.py; without this a CUDA torch on a GPU-less machine fails to import
    # comfy.model_management.
    args.cpu = cpu
    import comfy.model_management  # noqa: F401

    return root


def pack_module(name: str):
    """`nodes.<name>` (or any `<package>.<module>` path) of the pack, imported as a subpackage exactly as
    ComfyUI does, so its relative imports work. ComfyUI must already be importable (`comfy_in_process`)."""
    if PACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK, REPO_ROOT / "__init__.py",
                                                      submodule_search_locations=[str(REPO_ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{PACK}.{name}" if "." in name else f"{PACK}.nodes.{name}")
