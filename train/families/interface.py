"""What a family is, stated once: `Family`, the abstract base of every family class, and `FamilyModule`, what
each family file in this folder exports.

An abstract base rather than a `typing.Protocol`: the families share real code (freezing and moving the frozen
parts, gradient checkpointing, naming a head by width), which a Protocol could only carry as a second base class
beside it; and a family that leaves a method out fails when it is built, with a TypeError naming the method, not
in the middle of a run. Every family is ours, so deriving from the base costs nothing. The data every family
holds (`kind`, `heads`, ...) is declared as annotations here; the interface test checks it on each family. A
family *file* is a module, which cannot derive from a class: `FamilyModule` is the Protocol it meets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from audiotoken_core.embedder.meta import head_for_width

if TYPE_CHECKING:
    import torch


class Family(ABC):
    """A frozen text-to-image model the Embedder trains against and draws with.

    Capabilities the trainer asks instead of looking for a model's parts:
    * `supports_lora`: `--lora` trains a LoRA in `denoiser` (train/lora.py's `lora_unet_*` layout);
    * `supports_compile`: `--compile` compiles `denoiser`.
    Where either is true, `denoiser` is settable: the trainer puts the wrapped module back (torch.compile,
    accelerate's DDP).
    """

    kind: str  # "sd1", "sdxl", "flux", ...: recorded in the Embedder's training metadata
    heads: Sequence[str]  # the Embedder head per text encoder, in the order of `tokenizers` / `text_encoders`
    tokenizers: list
    text_encoders: list
    vae: torch.nn.Module
    scheduler: object  # the folder's own scheduler, for drawing
    prediction_type: str  # "epsilon", "v_prediction" or "flow"
    source: str  # where it was loaded from
    # every host embedding key (audiotoken_core.embedder.meta) whose head this family may have
    host_keys: ClassVar[tuple[str, ...]] = ()
    supports_lora: ClassVar[bool] = False
    supports_compile: ClassVar[bool] = False

    @classmethod
    def head_for(cls, width: int, default: str | None = None) -> str:
        """The head of an encoder `width` wide: the family's host key of that width in the table, else `default`
        (a key; the family's first one)."""
        return head_for_width(width, cls.host_keys, default or cls.host_keys[0])

    # ---- parts
    @property
    @abstractmethod
    def widths(self) -> dict[str, int]:
        """`{head: token width}`, read from the encoders (never from a model name)."""

    @property
    @abstractmethod
    def denoiser(self) -> torch.nn.Module:
        """The UNet or transformer."""

    @property
    def vae_downsample(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def frozen_modules(self) -> list[torch.nn.Module]:
        return [*self.text_encoders, self.denoiser, self.vae]

    def step_modules(self) -> list[torch.nn.Module]:
        """What moves to the device in the step's precision."""
        return [*self.text_encoders, self.denoiser]

    def freeze(self):
        for module in self.frozen_modules():
            module.requires_grad_(False)
            module.eval()
        return self

    def to(self, device=None, dtype=None, vae_dtype=None):
        for module in self.step_modules():
            module.to(device=device, dtype=dtype)
        self.vae.to(device=device, dtype=vae_dtype or dtype)
        return self

    def enable_gradient_checkpointing(self) -> None:
        self.denoiser.enable_gradient_checkpointing()
        for enc in self.text_encoders:
            # transformers 5 renamed the method; both keep the frozen encoder differentiable w.r.t. its input
            (getattr(enc, "activation_checkpointing_enable", None) or enc.gradient_checkpointing_enable)()

    @abstractmethod
    def configure(self, config) -> None:
        """Take the run's recipe settings the family reads (train.config.TrainConfig)."""

    # ---- the prompt
    @abstractmethod
    def prompt_inputs(self, prompt: str, batch: int, n_tokens: int | dict[str, int], device=None):
        """The tokenized prompt with its placeholder positions, `n_tokens` per placeholder (one count, or
        `{head: count}`)."""

    @abstractmethod
    def encode(self, inputs, tokens: dict[str, torch.Tensor] | None):
        """The denoiser's conditioning with `tokens[head]` written into each encoder's input embeddings at the
        placeholder (`tokens=None`: plain text)."""

    # ---- the objective
    @abstractmethod
    def latents(self, mean: torch.Tensor, std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Clean latents from the cached VAE distribution, in the denoiser's space."""

    @abstractmethod
    def noisy_input(self, latents: torch.Tensor, gen: torch.Generator):
        """`(noisy, timesteps, target, weighting or None)`, every draw from `gen`."""

    @abstractmethod
    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond, dtype: torch.dtype) -> torch.Tensor:
        """The denoiser's output, shaped like the target."""

    # ---- drawing
    @property
    @abstractmethod
    def default_size(self) -> tuple[int, int]:
        """`(height, width)` the model draws at by default."""

    @abstractmethod
    def pipeline(self, scheduler=None):
        """The family's own diffusers pipeline over these parts (`scheduler`: another one to draw with)."""

    @abstractmethod
    def sample(self, pipe, cond, uncond, generator, steps, guidance, height, width, dtype) -> torch.Tensor:
        """Latents `[B, C, h, w]` in the space of `latents()`, drawn by `pipe` from `generator`."""

    @abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1]."""


class FamilyModule(Protocol):
    """A family file: the diffusers pipelines it serves (model_index.json's `_class_name`) and its loader."""

    PIPELINES: tuple[str, ...]

    def load(self, path: str | Path, dtype: torch.dtype | None = None, config: str | Path | None = None) -> Family:
        """The frozen family from a diffusers folder `path` (or a single-file checkpoint with its config folder
        `config`, where the family reads one); all parts on the CPU: call `.to()` afterwards. `dtype` is the
        run's precision, which a family may load its big parts in (default float32)."""
