"""The frozen text-to-image model behind one typed interface; one file here per kind of family.

`interface.py` states the interface once: `Family`, the abstract base every family class derives from (its parts,
prompt encoding with the tokens written in, the objective, drawing, and the capabilities the trainer asks, such
as `supports_lora`), and `FamilyModule`, what each family file exports: `PIPELINES` (the diffusers pipeline class
names it serves, as model_index.json's `_class_name` spells them) and `load(path, dtype=None, config=None)`.

`unet.py` serves the UNet epsilon / v families (SD1.x, SD2.x, SDXL); `flow.py` holds what the flow-matching
transformer families share, and `flux.py`, `sd3.py`, `qwen_image.py`, `z_image.py`, `flux2_klein.py`, `flux2.py`
are one family each. A family names its Embedder heads by the host's keys in `audiotoken_core.embedder.meta`.

Adding a family means adding a file here and its name to `FAMILY_FILES`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself imports no torch
    from .interface import FamilyModule

FAMILY_FILES = ("unet", "flux", "sd3", "qwen_image", "z_image", "flux2_klein", "flux2")


def family_modules() -> dict[str, FamilyModule]:
    """Pipeline class name -> the family module that serves it."""
    out = {}
    for name in FAMILY_FILES:
        module = importlib.import_module(f"{__name__}.{name}")
        for pipeline in module.PIPELINES:
            out[pipeline] = module
    return out


def pipeline_name(folder: str | Path) -> str:
    return str(json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", ""))


def family_for(folder: str | Path) -> FamilyModule:
    """The family module for a diffusers folder, from its model_index.json (never from a flag)."""
    name, modules = pipeline_name(folder), family_modules()
    if name not in modules:
        raise ValueError(f"{folder}: {name or 'no _class_name'} in model_index.json is not a family the trainer "
                         f"knows ({', '.join(sorted(modules))})")
    return modules[name]
