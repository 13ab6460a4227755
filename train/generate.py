"""Images from sounds outside ComfyUI, with the same weights the nodes use.

    python -m train.generate --audio dog.wav --prompt "a photo of <audio>" --out out/

The options are the fields of `train.generate_config.GenerateConfig` (their help says what each does). Without
--base-model, --embedder and --beats it uses the official files (`audiotoken_core.sources`) from a cache folder
and downloads the missing ones first, each verified before use (--no-download: list them instead).

Every family of `train/families/` draws (SD1/SD2/SDXL, Flux.1, SD3.5, Qwen-Image, Z-Image, Flux.2 klein
and dev), read
from the folder. Conditioning is built by our own injection (tokens written at the placeholder of the prompt) and passed
to the family's diffusers pipeline as `prompt_embeds`; the unconditional branch, where the family has one, is
the empty prompt, as in the original inference code.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch

from audiotoken_core import sources

from .generate_config import SAMPLING, GenerateConfig, build_parser
from .inject import count_placeholders
from .options import given

log = logging.getLogger("train.generate")


def missing_files(base_model: str | None, embedder: str | None, beats: str | None, base_config: str | None = None) -> list[str]:
    """One line per missing model file: what it is, where it was looked for, where to get it."""
    from .models import missing_base_files

    problems = []
    if beats is not None and not Path(beats).is_file():
        problems.append(
            f"BEATs audio encoder: {beats} not found. Put {sources.official('audio_encoder').name} there "
            "(the Microsoft Azure link is dead; mirrors are listed in docs/training.md, e.g. the HF Space "
            "GuyYariv/AudioToken models/ folder)"
        )
    if embedder is not None and not Path(embedder).is_file():
        official = sources.official("embedder")
        problems.append(
            f"Embedder: {embedder} not found. Use a file written by `python -m train` "
            f"(audiotoken-embedder.safetensors) or the official {official.name} ({official.url})"
        )
    if base_model is not None:
        problems += missing_base_files(base_model, base_config)
    return problems


class AudioImageGenerator:
    """Base model + Embedder (+ BEATs for raw audio) -> images."""

    def __init__(self, base, embedder, beats=None, device="cpu", dtype=torch.float32, scheduler=None):
        self.base, self.embedder, self.beats = base, embedder, beats
        self.device, self.dtype = torch.device(device), dtype
        self.scheduler = scheduler or base.scheduler
        self._pipe = None

    @classmethod
    def from_files(cls, base_model, embedder_path, beats_path=None, device="cpu", dtype=torch.float32,
                   base_config=None, lora=None):
        from audiotoken_core.beats import load_beats
        from audiotoken_core.embedder import load_embedder
        from audiotoken_core.prompt import check_fits

        from .models import MissingModelError, load_base_model

        problems = missing_files(base_model, embedder_path, beats_path, base_config)
        if lora is not None and not Path(lora).is_file():
            problems.append(f"LoRA: {lora} not found (audiotoken-lora.safetensors from the training output folder, "
                            f"or the official {sources.official('lora').name}: --lora official)")
        if problems:
            raise MissingModelError("missing model files:\n  - " + "\n  - ".join(problems))
        base = load_base_model(base_model, base_config, dtype=dtype)
        if lora is not None:
            from .lora import load_lora

            if not base.supports_lora:
                raise ValueError(f"--lora: {lora} is a UNet LoRA; {base_model} is a {base.kind} model")
            load_lora(base.denoiser, lora)
        embedder = load_embedder(embedder_path)
        check_fits(embedder.widths, base.widths, str(embedder_path))
        beats = load_beats(beats_path) if beats_path else None
        # an fp16 VAE that its config marks `force_upcast` (SDXL's) overflows: keep that one in fp32
        upcast = dtype == torch.float16 and bool(getattr(base.vae.config, "force_upcast", False))
        base.to(device, dtype, vae_dtype=torch.float32 if upcast else dtype)
        embedder.to(device)
        if beats is not None:
            beats.to(device)
        return cls(base, embedder, beats, device, dtype)

    # ---- pipeline: the family's own diffusers pipeline, fed our conditioning
    def pipeline(self):
        if self._pipe is None:
            self._pipe = self.base.pipeline(self.scheduler)
        return self._pipe

    @torch.no_grad()
    def _conditioning(self, prompt: str, tokens: dict[str, torch.Tensor] | None, batch: int):
        n = {h: t.shape[1] for h, t in tokens.items()} if tokens else 1
        inputs = self.base.prompt_inputs(prompt, batch, n, self.device)
        toks = None if tokens is None else {h: t.to(self.device, torch.float32) for h, t in tokens.items()}
        return self.base.encode(inputs, toks)

    @torch.no_grad()
    def _run(self, cond, uncond, seeds, steps, guidance, height, width) -> list:
        pipe = self.pipeline()
        images = []
        for seed in seeds:
            gen = torch.Generator("cpu").manual_seed(int(seed))
            latents = self.base.sample(pipe, cond, uncond, gen, steps, guidance, height, width, self.dtype)
            images.append(self._decode(latents)[0])
        return images

    @torch.no_grad()
    def _decode(self, latents: torch.Tensor) -> list:
        from diffusers.image_processor import VaeImageProcessor

        return VaeImageProcessor().postprocess(self.base.decode(latents).float(), output_type="pil")

    def _size(self, height, width):
        default_h, default_w = self.base.default_size
        return height or default_h, width or default_w

    def images_for_tokens(self, tokens: dict[str, torch.Tensor], prompt: str = SAMPLING.prompt, seeds=(0,),
                          steps: int = SAMPLING.steps, guidance: float = SAMPLING.guidance,
                          height: int | None = None, width: int | None = None) -> list[list]:
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
            return AudioTokenizer(self.beats, self.embedder).encode(waveform, sample_rate, offset_s=offset_s,
                                                                    mode=mode).tokens
        finally:
            self.embedder.train(was)

    def images_for_audio(self, waveform, sample_rate: int, prompt: str = SAMPLING.prompt, seeds=(0,),
                         steps: int = SAMPLING.steps, guidance: float = SAMPLING.guidance, height=None, width=None,
                         offset_s: float = 0.0, mode: str = "first") -> list[list]:
        tokens = self.tokens_for_audio(waveform, sample_rate, offset_s, mode)
        return self.images_for_tokens(tokens, prompt, seeds, steps, guidance, height, width)

    def images_for_text(self, prompt: str, seeds=(0,), steps: int = SAMPLING.steps,
                        guidance: float = SAMPLING.guidance, height=None, width=None) -> list:
        """Plain text-to-image with the same pipeline (for comparisons); one image per seed."""
        height, width = self._size(height, width)
        return self._run(self._conditioning(prompt, None, 1), self._conditioning("", None, 1),
                         seeds, steps, guidance, height, width)


# option -> the kind of official file it takes when left out (`audiotoken_core.sources`)
OFFICIAL_KINDS = {"base_model": "base_model", "embedder": "embedder", "beats": "audio_encoder", "lora": "lora"}


def default_cache_dir() -> Path:
    if os.environ.get("AUDIOTOKEN_CACHE"):
        return Path(os.environ["AUDIOTOKEN_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "audiotoken"


def model_paths(cfg: GenerateConfig) -> dict[str, Path | None]:
    """The four model locations: as given, or the official files in the cache folder."""
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_dir()
    paths = {role: Path(getattr(cfg, role)) if getattr(cfg, role)
             else cache / sources.official(OFFICIAL_KINDS[role]).name for role in ("base_model", "embedder", "beats")}
    official_lora = cache / sources.official("lora").name
    paths["lora"] = None if not cfg.lora else official_lora if cfg.lora == "official" else Path(cfg.lora)
    return paths


def _is_missing(role: str, path: Path, base_config: str | None) -> bool:
    from .models import missing_base_files

    # huggingface_hub writes each file whole (a temp name, then renamed): a folder that looks complete is complete
    return bool(missing_base_files(path, base_config)) if role == "base_model" else not path.is_file()


def fetch_missing(paths: dict[str, Path | None], base_config: str | None, download: bool) -> dict[str, str]:
    """Downloads the missing official files (when allowed); returns {option: what to put where} for those
    still missing, a failed download among them: each file is tried, so one run lists every file that is
    missing. Paths that are not official files are left to `missing_files`."""
    from audiotoken_core import download as dl
    from audiotoken_core.snapshot import fetch_snapshot

    left = {}
    for role, path in paths.items():
        if path is None or not _is_missing(role, path, base_config):
            continue
        source = sources.find(path.name)
        if source is None or source.kind != OFFICIAL_KINDS[role]:
            continue
        if not download:
            left[role] = dl.where_to_put(source, path) + " (or run without --no-download to fetch it)"
            continue
        try:
            if source.hf_repo:
                fetch_snapshot(source, path.parent)
            else:
                bar = dl.ConsoleProgress(source.name)
                try:
                    dl.fetch(source, path.parent, progress=bar)
                finally:
                    bar.close()
        except dl.DownloadError as exc:
            left[role] = str(exc)
    return left


def main(argv=None) -> int:
    from audiotoken_core.download import mirror_line
    from audiotoken_core.precision import resolve_dtype

    from .data.decode import DecodeError, decode_audio
    from .models import MissingModelError

    cfg = GenerateConfig(**given(build_parser().parse_args(argv), GenerateConfig))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpx2", "huggingface_hub"):  # one line per HTTP request drowns the progress bars
        logging.getLogger(chatty).setLevel(logging.WARNING)
    missing_audio = [f"audio file {a} not found" for a in cfg.audio if not Path(a).is_file()]
    paths = model_paths(cfg)
    # a mistyped sound must not cost gigabytes first: then the missing models are only listed
    download = cfg.download and not missing_audio
    official = fetch_missing(paths, cfg.base_config, download)
    present = [None if role in official else str(paths[role]) for role in ("base_model", "embedder", "beats")]
    problems = missing_audio + list(official.values()) + missing_files(*present, cfg.base_config)
    if paths["lora"] is not None and "lora" not in official and not paths["lora"].is_file():
        problems.append(f"LoRA: {paths['lora']} not found (--lora official fetches the official one)")
    if problems:
        offline = download and bool(official)  # a download was tried and failed: say how to get past it
        print("cannot generate; missing files:\n  - " + "\n  - ".join(problems)
              + (f"\n{mirror_line()}" if offline else ""), file=sys.stderr)
        return 2
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        gen = AudioImageGenerator.from_files(str(paths["base_model"]), str(paths["embedder"]), str(paths["beats"]),
                                             device, resolve_dtype(cfg.dtype, device), base_config=cfg.base_config,
                                             lora=str(paths["lora"]) if paths["lora"] else None)
    except (MissingModelError, ValueError) as exc:
        print(f"cannot load models: {exc}", file=sys.stderr)
        return 2
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    for audio in cfg.audio:
        try:
            samples, rate = decode_audio(audio)
        except DecodeError as exc:
            print(f"skipping {audio}: {exc}", file=sys.stderr)
            continue
        rows = gen.images_for_audio(torch.from_numpy(samples), rate, cfg.prompt, cfg.seeds, cfg.steps,
                                    cfg.guidance, cfg.height, cfg.width, cfg.offset, cfg.mode)
        for seed, image in zip(cfg.seeds, rows[0]):
            path = out / f"{Path(audio).stem}_seed{seed}.png"
            image.save(path)
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
