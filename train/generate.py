"""Images from sounds outside ComfyUI, with the same weights the nodes use.

    python -m train.generate --audio dog.wav --prompt "a photo of <audio>" \
        --base-model models/sd15 --embedder audiotoken-embedder.safetensors --beats BEATs.pt --out out/

Conditioning is built by our own injection (tokens written at the placeholder of the prompt) and passed
to the diffusers pipeline as `prompt_embeds`; the unconditional branch is the empty prompt, as in the
original inference code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from .inject import PromptEncoder, count_placeholders

log = logging.getLogger("train.generate")


def missing_files(base_model: str | None, embedder: str | None, beats: str | None, base_config: str | None = None) -> list[str]:
    """One line per missing model file: what it is, where it was looked for, where to get it."""
    from .models import missing_base_files

    problems = []
    if beats is not None and not Path(beats).is_file():
        problems.append(
            f"BEATs audio encoder: {beats} not found. Put BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt there "
            "(the Microsoft Azure link is dead; mirrors are listed in docs/training.md, e.g. the HF Space "
            "GuyYariv/AudioToken models/ folder)"
        )
    if embedder is not None and not Path(embedder).is_file():
        problems.append(
            f"Embedder: {embedder} not found. Use a file written by `python -m train` "
            "(audiotoken-embedder.safetensors) or the official output/embedder_learned_embeds.bin from "
            "github.com/guyyariv/AudioToken"
        )
    if base_model is not None:
        problems += missing_base_files(base_model, base_config)
    return problems


class AudioImageGenerator:
    """Base model + Embedder (+ BEATs for raw audio) -> images."""

    def __init__(self, base, embedder, beats=None, device="cpu", dtype=torch.float32, scheduler=None):
        self.base, self.embedder, self.beats = base, embedder, beats
        self.device, self.dtype = torch.device(device), dtype
        self.prompts = PromptEncoder(base)
        self.scheduler = scheduler or base.scheduler
        self._pipe = None

    @classmethod
    def from_files(cls, base_model, embedder_path, beats_path=None, device="cpu", dtype=torch.float32,
                   base_config=None, lora=None):
        from audiotoken_core.beats import load_beats
        from audiotoken_core.embedder import load_embedder

        from .models import MissingModelError, load_base_model

        problems = missing_files(base_model, embedder_path, beats_path, base_config)
        if lora is not None and not Path(lora).is_file():
            problems.append(f"LoRA: {lora} not found (audiotoken-lora.safetensors from the training output folder)")
        if problems:
            raise MissingModelError("missing model files:\n  - " + "\n  - ".join(problems))
        base = load_base_model(base_model, base_config)
        if lora is not None:
            from .lora import load_lora

            load_lora(base.unet, lora)
        embedder = load_embedder(embedder_path)
        for head in base.heads:
            if head not in embedder.heads:
                raise ValueError(
                    f"{embedder_path} has heads {embedder.head_names} but the base model needs {base.heads} "
                    f"(token widths {base.widths}); it was trained for another base model family"
                )
            if embedder.widths[head] != base.widths[head]:
                raise ValueError(f"{embedder_path}: head {head} is {embedder.widths[head]} wide, the base model's "
                                 f"text encoder is {base.widths[head]}")
        beats = load_beats(beats_path) if beats_path else None
        # an fp16 VAE that its config marks `force_upcast` (SDXL's) overflows: keep that one in fp32
        upcast = dtype == torch.float16 and bool(getattr(base.vae.config, "force_upcast", False))
        base.to(device, dtype, vae_dtype=torch.float32 if upcast else dtype)
        embedder.to(device)
        if beats is not None:
            beats.to(device)
        return cls(base, embedder, beats, device, dtype)

    # ---- pipeline
    def pipeline(self):
        if self._pipe is None:
            from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

            b = self.base
            if b.is_sdxl:
                self._pipe = StableDiffusionXLPipeline(
                    vae=b.vae, text_encoder=b.text_encoders[0], text_encoder_2=b.text_encoders[1],
                    tokenizer=b.tokenizers[0], tokenizer_2=b.tokenizers[1], unet=b.unet, scheduler=self.scheduler,
                )
            else:
                self._pipe = StableDiffusionPipeline(
                    vae=b.vae, text_encoder=b.text_encoders[0], tokenizer=b.tokenizers[0], unet=b.unet,
                    scheduler=self.scheduler, safety_checker=None, feature_extractor=None,
                    requires_safety_checker=False,
                )
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    @torch.no_grad()
    def _conditioning(self, prompt: str, tokens: dict[str, torch.Tensor] | None, batch: int):
        n = next(iter(tokens.values())).shape[1] if tokens else 1
        ids = self.prompts.ids(prompt, batch, n, self.device)
        toks = None if tokens is None else {h: t.to(self.device, torch.float32) for h, t in tokens.items()}
        return self.prompts.encode(ids, toks)

    @torch.no_grad()
    def _run(self, cond, uncond, seeds, steps, guidance, height, width) -> list:
        pipe = self.pipeline()
        (hidden, pooled), (u_hidden, u_pooled) = cond, uncond
        kwargs = dict(prompt_embeds=hidden.to(self.dtype), negative_prompt_embeds=u_hidden.to(self.dtype),
                      num_inference_steps=steps, guidance_scale=guidance, height=height, width=width)
        if self.base.is_sdxl:
            kwargs.update(pooled_prompt_embeds=pooled.to(self.dtype), negative_pooled_prompt_embeds=u_pooled.to(self.dtype))
        images = []
        for seed in seeds:
            gen = torch.Generator("cpu").manual_seed(int(seed))
            latents = pipe(generator=gen, output_type="latent", **kwargs).images
            images.append(self._decode(latents)[0])
        return images

    @torch.no_grad()
    def _decode(self, latents: torch.Tensor) -> list:
        # decoded here, in the VAE's own dtype, because the pipelines assume the VAE shares the UNet's
        # dtype, which is not so during training (fp32 VAE, bf16 UNet) or for an upcast SDXL VAE
        vae = self.base.vae
        dtype = next(vae.parameters()).dtype
        image = vae.decode(latents.to(vae.device, dtype) / self.base.latent_scale).sample
        return self.pipeline().image_processor.postprocess(image.float(), output_type="pil")

    def _size(self, height, width):
        default = self.base.unet.config.sample_size * self.base.vae_downsample
        return height or default, width or default

    def images_for_tokens(self, tokens: dict[str, torch.Tensor], prompt: str = "a photo of <audio>", seeds=(0,),
                          steps: int = 30, guidance: float = 7.5, height: int | None = None,
                          width: int | None = None) -> list[list]:
        """Per sound (row b of each `[B, n, D]` token tensor), per seed: a PIL image."""
        if count_placeholders(prompt) == 0:
            raise ValueError(f"the prompt {prompt!r} has no placeholder: write <audio> (or <*>) where the sound goes")
        missing = [h for h in self.base.heads if h not in tokens]
        if missing:
            raise ValueError(f"tokens lack heads {missing} needed by this base model (heads {self.base.heads})")
        height, width = self._size(height, width)
        n_sounds = next(iter(tokens.values())).shape[0]
        uncond = self._conditioning("", None, 1)
        out = []
        for b in range(n_sounds):
            cond = self._conditioning(prompt, {h: tokens[h][b : b + 1] for h in self.base.heads}, 1)
            out.append(self._run(cond, uncond, seeds, steps, guidance, height, width))
        return out

    def tokens_for_audio(self, waveform, sample_rate: int, offset_s: float = 0.0, mode: str = "first"):
        from audiotoken_core.pipeline import AudioTokenizer

        if self.beats is None:
            raise ValueError("no BEATs audio encoder was loaded; pass beats_path to from_files")
        was = self.embedder.training
        self.embedder.eval()
        try:
            return AudioTokenizer(self.beats, self.embedder).encode(waveform, sample_rate, offset_s=offset_s, mode=mode)
        finally:
            self.embedder.train(was)

    def images_for_audio(self, waveform, sample_rate: int, prompt: str = "a photo of <audio>", seeds=(0,),
                         steps: int = 30, guidance: float = 7.5, height=None, width=None,
                         offset_s: float = 0.0, mode: str = "first") -> list[list]:
        tokens = self.tokens_for_audio(waveform, sample_rate, offset_s, mode)
        return self.images_for_tokens(tokens, prompt, seeds, steps, guidance, height, width)

    def images_for_text(self, prompt: str, seeds=(0,), steps: int = 30, guidance: float = 7.5,
                        height=None, width=None) -> list:
        """Plain text-to-image with the same pipeline (for comparisons); one image per seed."""
        height, width = self._size(height, width)
        return self._run(self._conditioning(prompt, None, 1), self._conditioning("", None, 1),
                         seeds, steps, guidance, height, width)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--audio", nargs="+", required=True, help="sound or video file(s)")
    p.add_argument("--prompt", default="a photo of <audio>", help="must contain <audio> (or <*>)")
    p.add_argument("--base-model", required=True, help="diffusers folder or single-file checkpoint")
    p.add_argument("--base-config", help="diffusers config folder for a single-file checkpoint")
    p.add_argument("--embedder", required=True, help="audiotoken-embedder.safetensors or embedder_learned_embeds.bin")
    p.add_argument("--beats", required=True, help="BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")
    p.add_argument("--lora", help="audiotoken-lora.safetensors (if trained with --lora)")
    p.add_argument("--out", default="generated", help="output folder")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--height", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--offset", type=float, default=0.0, help="window start in seconds")
    p.add_argument("--mode", choices=["first", "mean"], default="first", help="one window, or the mean over all windows")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp16" if torch.cuda.is_available() else "fp32")
    return p


def main(argv=None) -> int:
    from .data.decode import DecodeError, decode_audio
    from .models import MissingModelError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    problems = missing_files(args.base_model, args.embedder, args.beats, args.base_config)
    problems += [f"audio file {a} not found" for a in args.audio if not Path(a).is_file()]
    if problems:
        print("cannot generate; missing files:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 2
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    try:
        gen = AudioImageGenerator.from_files(args.base_model, args.embedder, args.beats, args.device, dtype,
                                             base_config=args.base_config, lora=args.lora)
    except (MissingModelError, ValueError) as exc:
        print(f"cannot load models: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for audio in args.audio:
        try:
            samples, rate = decode_audio(audio)
        except DecodeError as exc:
            print(f"skipping {audio}: {exc}", file=sys.stderr)
            continue
        rows = gen.images_for_audio(torch.from_numpy(samples), rate, args.prompt, args.seeds, args.steps,
                                    args.guidance, args.height, args.width, args.offset, args.mode)
        for seed, image in zip(args.seeds, rows[0]):
            path = out / f"{Path(audio).stem}_seed{seed}.png"
            image.save(path)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
