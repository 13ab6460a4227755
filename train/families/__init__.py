"""The frozen text-to-image model behind one small interface; one file here per kind of family.

A family file defines `PIPELINES` (the diffusers pipeline class names it serves, as model_index.json's
`_class_name` spells them) and `load(folder, dtype)` (the UNet file: `load(path, config)`, single files too),
which returns an object with:

* `kind`, `heads` (Embedder head per text encoder, in the order of `tokenizers` / `text_encoders`), `widths`,
  `vae`, `denoiser` (UNet or transformer), `prediction_type` (epsilon, v_prediction or flow);
* `prompt_inputs(prompt, batch, n_tokens, device)`: the tokenized prompt with its placeholder positions, `n_tokens`
  per placeholder (one count, or `{head: count}`);
* `encode(inputs, tokens)`: the denoiser's conditioning with `tokens[head]` written into each encoder's input
  embeddings at the placeholder (`tokens=None`: plain text);
* `latents(mean, std, eps)`: clean latents from the cached VAE distribution, in the denoiser's space;
* `noisy_input(latents, generator)`: `(noisy, timesteps, target, weighting or None)`, every draw from `generator`;
* `predict(noisy, timesteps, conditioning, dtype)`: the denoiser's output, shaped like `target`;
* `configure(train_config)`: the run's recipe settings the family reads (flow families: timestep sampling);
* `pipeline(scheduler)`: the family's own diffusers pipeline; `sample(pipe, conditioning, unconditional,
  generator, steps, guidance, height, width, dtype)` -> latents `[B, C, h, w]`; `decode(latents)` -> images in
  [-1, 1]; `default_size`;
* `frozen_modules()`, `step_modules()` (what moves to the device in the step's precision), `freeze()`, `to()`,
  `enable_gradient_checkpointing()`.

`unet.py` serves the UNet epsilon / v families (SD1.x, SD2.x, SDXL); `flow.py` holds what the flow-matching
transformer families share, and `flux.py`, `sd3.py`, `qwen_image.py`, `z_image.py`, `flux2_klein.py`, `flux2.py`
are one family each.

Adding a family means adding a file here and its name to `FAMILY_FILES`.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

# what every family object answers (the list above), checked by the tests for each family
INTERFACE = ("kind", "heads", "widths", "tokenizers", "text_encoders", "vae", "denoiser", "prediction_type",
             "configure", "prompt_inputs", "encode", "latents", "noisy_input", "predict", "pipeline", "sample",
             "decode", "default_size", "frozen_modules", "step_modules", "freeze", "to",
             "enable_gradient_checkpointing")

FAMILY_FILES = ("unet", "flux", "sd3", "qwen_image", "z_image", "flux2_klein", "flux2")


def family_modules() -> dict[str, object]:
    """Pipeline class name -> the family module that serves it."""
    out = {}
    for name in FAMILY_FILES:
        module = importlib.import_module(f"{__name__}.{name}")
        for pipeline in module.PIPELINES:
            out[pipeline] = module
    return out


def pipeline_name(folder: str | Path) -> str:
    return str(json.loads((Path(folder) / "model_index.json").read_text()).get("_class_name", ""))


def family_for(folder: str | Path):
    """The family module for a diffusers folder, from its model_index.json (never from a flag)."""
    name, modules = pipeline_name(folder), family_modules()
    if name not in modules:
        raise ValueError(f"{folder}: {name or 'no _class_name'} in model_index.json is not a family the trainer "
                         f"knows ({', '.join(sorted(modules))})")
    return modules[name]
