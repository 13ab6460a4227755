"""Every GPU goal of the project in one run: real model sizes, random weights, nothing downloaded.

Measures (one Markdown table, with the device name, to stdout and to --out):
  precision   fp16 / bf16 BEATs (+ fp32 Embedder, as the nodes run them) against fp32, on synthesised clips;
  latency     audio -> tokens and tokens -> CONDITIONING for a 10 s clip (the nodes when COMFYUI_PATH is an
              importable ComfyUI, else the core path with the SD1.5 text encoder); goal <= 20 ms in all;
  attention   BEATs with the original arithmetic, the previous and the current attention (bench_attention.py);
  trainer     original recipe vs ours in samples/s at SD1.5 size, 512x320 frames (train_throughput.py); goal 5x;
  unet        achieved TFLOP/s of the trainer's UNet step (FlopCounterMode) as a share of the bf16 peak; goal 40%;
  generate    one 512x512, 30-step picture through train.generate (needs diffusers);
  flux_step   one Embedder training micro-step through Flux.1-dev at its published size (12B transformer, CLIP-L,
              T5-XXL), bf16, gradient checkpointing, batch 1, 1024x1024 frames: s/step and peak GPU memory;
  qwen_image_step  the same through Qwen-Image (20B transformer, Qwen2.5-VL-7B). Both build their random weights
              directly on the GPU in bf16 and run the trainer's own family code and Trainer.loss (needs diffusers).
Each section is guarded (a failure becomes an ERROR row, the rest still run) and the whole run keeps to
--budget-s (a section that would not fit becomes a SKIPPED row).

On any machine with an NVIDIA GPU, from the repository root, in an environment with torch (CUDA), transformers,
accelerate, safetensors and, for the generate row, diffusers (`pip install -e ".[train]"` gives all of them):

    PYTHONUNBUFFERED=1 python -m benchmarks.gpu_suite --out gpu_suite.md

It downloads nothing (every model is built with random weights at its real size: SD1.5, BEATs iter3+, Flux.1-dev,
Qwen-Image), and --budget-s (default 450) bounds the whole run. Where pip cannot reach an index (the device
machine has torch, transformers, accelerate, peft and safetensors but no diffusers), install wheels fetched
elsewhere first: `pip download --no-deps --only-binary=:all: -d .whl diffusers==0.42.1 importlib_metadata==10.2.0`
(with the target's --python-version and --platform), then there `pip install --no-index --no-deps --target
/tmp/site .whl/*.whl` and `PYTHONPATH=/tmp/site`. `--tokenizers DIR` (a ComfyUI comfy/ folder, or a copy of its
sd1_tokenizer and text_encoders/{t5,qwen25}_tokenizer) gives the flow rows the real tokenizers; docs/benchmarks.md
has the exact device command and records the runs so far.

On a CPU, tiny sizes (< 1 min; tests/test_gpu_suite.py runs it):

    python -m benchmarks.gpu_suite --dry-run --out /tmp/gpu_suite.md
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audiotoken_core.beats import ITER3_AS2M_CFG
from benchmarks import bench_attention, train_throughput
from benchmarks.toyworld import sounds
from audiotoken_core.precision import resolve, resolve_dtype, supports, torch_dtype
from testkit.beats import random_beats

RATE = 16_000
PROMPT = "a photo of <audio>"
LATENCY_GOAL_S = 0.020
TRAINER_GOAL = 5.0
UNET_SHARE_GOAL = 0.40
# The tolerances tests/test_beats.py holds CUDA half precision to (max |a - b| / max |b|).
PRECISION_GOALS = {"fp16": 2e-2, "bf16": 5e-2}
# Dense (no sparsity) bf16 tensor-core TFLOP/s from the vendors' datasheets. The first name contained in the
# device name wins, so the more specific names come first.
BF16_PEAK_TFLOPS = (
    ("GH200", 989.5), ("H200 NVL", 835.5), ("H200", 989.5), ("H100 PCIe", 756.5), ("H100 NVL", 835.5),
    ("H100", 989.5), ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.05), ("L40", 181.05), ("L4", 121.0),
    ("RTX 4090", 165.2), ("RTX 3090", 71.0),
)


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the device run and the CPU dry run."""

    beats_cfg: dict
    width: int  # CLIP token width of the base model
    clip_seconds: float
    clips: int
    latency_repeats: int
    attention_repeats: int
    throughput_args: tuple
    unet_steps: int
    picture: int  # side in pixels
    picture_steps: int
    matmul: int  # side of the square bf16 product that measures the achievable rate
    budget_s: float
    full: bool  # real sizes, so the goals apply (not to tiny models on a CPU)
    frame: str  # training frame WxH
    flow_steps: int  # timed steps of the Flux / Qwen-Image rows (after one warm-up)
    # seconds a section needs at least; one that would not fit in what is left is skipped
    needs_s: dict = field(default_factory=dict)


def full_sizes(device: str) -> Sizes:
    return Sizes(
        full=True, beats_cfg=dict(ITER3_AS2M_CFG), width=768, frame="512x320",
        clip_seconds=10.0, clips=4, latency_repeats=30, attention_repeats=10, unet_steps=10,
        picture=512, picture_steps=30, matmul=8192, budget_s=450.0, flow_steps=3,
        throughput_args=("--full", "--device", device, "--rounds", "2", "--steps", "6", "--warmup", "2"),
        needs_s={"precision": 20, "latency": 20, "attention": 10, "trainer": 90, "unet": 45, "generate": 45,
                "flux_step": 50, "qwen_image_step": 70},
    )


def dry_sizes() -> Sizes:
    from testkit.beats import tiny_official_cfg
    from testkit.sd import SD1_WIDTH

    return Sizes(
        full=False, beats_cfg=tiny_official_cfg(), width=SD1_WIDTH, frame="64x40",
        clip_seconds=2.0, clips=4, latency_repeats=2, attention_repeats=1, unet_steps=2,
        picture=32, picture_steps=2, matmul=256, budget_s=70.0, flow_steps=1,
        throughput_args=("--device", "cpu", "--rounds", "1", "--steps", "1", "--warmup", "1", "--window", "1"),
        needs_s={"precision": 2, "latency": 2, "attention": 2, "trainer": 8, "unet": 3, "generate": 3,
                "flux_step": 5, "qwen_image_step": 5},
    )


@dataclass
class Row:
    section: str
    measure: str
    value: str
    goal: str = ""
    note: str = ""


class Report:
    """The table so far; rewritten to ``out`` after every row, so a run cut short still leaves its rows."""

    def __init__(self, out: Path | None, heading: str):
        self.out, self.heading, self.rows = out, heading, []

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"  {row.section} | {row.measure} | {row.value} | {row.goal} | {row.note}", flush=True)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(self.markdown(), encoding="utf-8")

    def markdown(self) -> str:
        lines = [self.heading, "", "| section | measure | value | goal | note |", "|---|---|---|---|---|"]
        lines += [f"| {r.section} | {r.measure} | {r.value} | {r.goal} | {r.note} |" for r in self.rows]
        return "\n".join(lines) + "\n"


class OutOfTime(Exception):
    pass


class Skip(Exception):
    """A section that cannot run here, for a reason the row states (not a failure)."""


def _alarm(signum, frame):
    raise OutOfTime("the suite's time budget ran out inside this section")


def run_section(name: str, fn, ctx: "Context", report: Report) -> None:
    left = ctx.deadline - time.monotonic()
    need = ctx.sizes.needs_s.get(name, 0)
    if left < need:
        report.add(Row(name, "SKIPPED", "-", note=f"time budget: {left:.0f} s left, needs ~{need} s"))
        return
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, left)
    start = time.monotonic()
    try:
        for row in fn(ctx):
            report.add(row)
    except Skip as exc:
        report.add(Row(name, "SKIPPED", "-", note=str(exc)))
    except Exception as exc:  # one section's failure must not cost the others their rows
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300].replace("|", "/")
        report.add(Row(name, "ERROR", "-", note=message))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"[{name}: {time.monotonic() - start:.1f} s]", flush=True)


def diffusers_version() -> str | None:
    try:
        import diffusers
    except ImportError:
        return None
    return diffusers.__version__


def require_diffusers() -> None:
    if diffusers_version() is None:
        raise Skip("diffusers not installed (carry its wheel: see the top of benchmarks/gpu_suite.py)")


class Context:
    """Models shared by the sections, built once; the base model only when a section asks for it."""

    def __init__(self, sizes: Sizes, device: torch.device, work: Path, tokenizers: Path | None = None,
                 flow_frame: str | None = None):
        from audiotoken_core.embedder import AudioEmbedder

        self.sizes, self.device, self.work, self.tokenizers = sizes, device, work, tokenizers
        self.flow_frame = flow_frame or FLOW_FRAME
        self.deadline = time.monotonic() + sizes.budget_s
        self.beats = random_beats(sizes.beats_cfg)  # fp32 master copy on the CPU
        torch.manual_seed(0)
        self.embedder = AudioEmbedder(3 * self.beats.embed_dim, {"l": sizes.width}).eval().requires_grad_(False)
        self.clips = real_looking_clips(sizes.clip_seconds, sizes.clips)
        self._base = None

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def beats_as(self, dtype: torch.dtype):
        return copy.deepcopy(self.beats).to(self.device, dtype)

    def tokenizer(self, dtype: torch.dtype):
        from audiotoken_core.pipeline import AudioTokenizer

        return AudioTokenizer(self.beats_as(dtype), copy.deepcopy(self.embedder).to(self.device))

    def base(self):
        """SD1.5-size random base model (tiny for the dry run), on the CPU in float32."""
        require_diffusers()
        if self._base is None:
            from testkit.sd import write_tiny_sd, write_tiny_tokenizer

            from train.models import load_base_model

            if self.sizes.full:
                self._base = train_throughput.full_base(write_tiny_tokenizer(self.work / "tok"))
            else:
                self._base = load_base_model(write_tiny_sd(self.work / "sd", "sd1"))
        return self._base


def speech_like(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Syllables: a glottal pulse train with a gliding pitch through vowel formants, fricative bursts, pauses."""
    n, out = t.shape[0], torch.zeros(t.shape[0])
    f0 = sounds._u(gen, 100, 200) * (1 + 0.15 * torch.sin(2 * math.pi * 0.4 * t))
    pulses = (torch.frac(torch.cumsum(f0, 0) / RATE).diff(prepend=torch.zeros(1)) < 0).float()
    vowels = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))
    start = 0
    while start < n:
        length = int(sounds._u(gen, 0.12, 0.35) * RATE)
        seg = slice(start, min(n, start + length))
        formants = vowels[int(torch.randint(len(vowels), (), generator=gen))]
        voiced = _formant_filter(pulses[seg], formants)
        fricative = sounds._highpass(sounds._noise(voiced.shape[0], gen), 3500) * 0.3
        envelope = torch.hann_window(voiced.shape[0], periodic=False)
        out[seg] = (voiced + fricative * (torch.rand((), generator=gen) < 0.4)) * envelope
        start += length + int(sounds._u(gen, 0.0, 0.25) * RATE)  # pauses between syllables
    return out


def _formant_filter(x: torch.Tensor, formants, bandwidth: float = 80.0) -> torch.Tensor:
    spec = torch.fft.rfft(x)
    f = torch.fft.rfftfreq(x.shape[-1], 1 / RATE)
    gain = sum(1 / (1 + ((f - fc) / bandwidth) ** 2) / (k + 1) for k, fc in enumerate(formants))
    return torch.fft.irfft(spec * gain, n=x.shape[-1])


# name -> (design, weight) mixes: the toy world's sound designs plus speech, each a plausible scene
SCENES = {
    "tones+noise+transients": ((sounds.low_hum, 0.5), (sounds.chime, 0.4), (sounds.clicks, 0.6), (sounds.hiss, 0.2)),
    "speech-like formants": ((speech_like, 1.0), (sounds.rumble, 0.05)),
    "traffic (siren + rumble)": ((sounds.siren, 0.6), (sounds.rumble, 0.5)),
    "insects in rain (buzz + hiss)": ((sounds.buzz, 0.5), (sounds.hiss, 0.5)),
}


def real_looking_clips(seconds: float, count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``count`` 16 kHz clips of ``seconds``, peak-normalised to 0.3-0.9, each over its own faint noise."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * RATE)) / RATE
    clips = {}
    for name, parts in list(SCENES.items())[:count]:
        x = sum(weight * _unit(design(t, gen)) for design, weight in parts)
        x = _unit(x) * sounds._u(gen, 0.3, 0.9) + sounds._noise(t.shape[0], gen) * 0.005
        clips[name] = x.clamp(-1, 1).float()
    return clips


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.abs().max().clamp(min=1e-6)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def seconds(times: list[float]) -> str:
    return f"{_ms(statistics.median(times))} ({_ms(min(times))}-{_ms(max(times))})"


def _ms(s: float) -> str:
    return f"{s * 1000:.2f} ms" if s < 1 else f"{s:.2f} s"


def judge(goal: str, ok: bool, ctx: Context) -> str:
    if not ctx.sizes.full:
        return f"{goal} (not judged: dry run)"
    return f"{goal} ({'met' if ok else 'NOT met'})"


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    ours, ref = ours.float().cpu(), ref.float().cpu()
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def half_dtypes(device: torch.device) -> dict[str, torch.dtype]:
    return {name: torch_dtype(name) for name in PRECISION_GOALS if device.type != "cuda" or supports(device, name)}


@torch.inference_mode()
def precision(ctx: Context):
    reference = ctx.tokenizer(torch.float32)
    waves = {name: clip[None].to(ctx.device) for name, clip in ctx.clips.items()}
    ref = {}
    for name, w in waves.items():
        feats = reference.features(w)
        ref[name] = (feats, reference.tokens_from_features(feats)["l"])
    del reference
    for label, dtype in half_dtypes(ctx.device).items():
        half = ctx.tokenizer(dtype)
        token_errs, feature_errs = {}, {}
        for name, w in waves.items():
            feats = half.features(w)
            feature_errs[name] = rel_err(feats, ref[name][0])
            token_errs[name] = rel_err(half.tokens_from_features(feats)["l"], ref[name][1])
        worst = max(token_errs.values())
        per_clip = ", ".join(f"{name} {e:.1e}" for name, e in token_errs.items())
        goal = PRECISION_GOALS[label]
        yield Row("precision", f"{label} BEATs vs fp32: token max rel err (worst of {len(waves)} clips)",
                  f"{worst:.2e}", judge(f"<= {goal:.0e}", worst <= goal, ctx), per_clip)
        yield Row("precision", f"{label} BEATs vs fp32: layer 4/8/12 features max rel err",
                  f"{max(feature_errs.values()):.2e}", note="Embedder in fp32, as the nodes and AudioTokenizer run it")
        del half


def latency(ctx: Context):
    if os.environ.get("COMFYUI_PATH"):
        try:
            yield from latency_nodes(ctx)
            return
        except ImportError as exc:
            note = f"COMFYUI_PATH is set but the host does not import ({exc}); core path instead"
    else:
        note = "core path (COMFYUI_PATH not set)"
    yield from latency_core(ctx, note)


def latency_core(ctx: Context, note: str):
    """The core equivalent of the two nodes: AudioTokenizer.encode, then the UNet family's prompt encoding on CLIP."""
    from audiotoken_core.resample import resample

    beats_dtype = resolve_dtype("auto", ctx.device)  # what nodes.runtime.pick_dtype gives on a plain host
    tokenizer = ctx.tokenizer(beats_dtype)
    clip = next(iter(ctx.clips.values()))
    # a LoadAudio-like input: 44.1 kHz stereo on the CPU
    sound = resample(clip, RATE, 44100).expand(2, -1).contiguous()[None]
    held = {}

    def tokens():
        held["tokens"] = tokenizer.encode(sound, 44100).tokens

    times_tokens = timed(tokens, ctx.device, ctx.sizes.latency_repeats)
    where = f"{_name(beats_dtype)} BEATs, fp32 Embedder"
    clip_s = f"{ctx.sizes.clip_seconds:g} s"
    yield Row("latency", f"audio -> tokens ({clip_s}, 44.1 kHz stereo in)", seconds(times_tokens),
              note=f"{note}; {where}")
    yield prepare_row(ctx, sound)
    try:
        base = ctx.base()
    except Skip as exc:
        yield Row("latency", "tokens -> CONDITIONING", "SKIPPED", note=str(exc))
        return
    clip_dtype = torch.float16 if ctx.on_gpu else torch.float32  # the host's text-encoder dtype on a GPU
    text = copy.deepcopy(base.text_encoders[0]).to(ctx.device, clip_dtype)
    prompts = _with_text_encoder(base, text)

    @torch.inference_mode()
    def conditioning():
        held["cond"] = prompts.encode(prompts.prompt_inputs(PROMPT, 1, 1, ctx.device), held["tokens"])

    times_cond = timed(conditioning, ctx.device, ctx.sizes.latency_repeats)
    text_note = f"CLIP text encoder ({_params(text)}, {_name(clip_dtype)}), the UNet family's encode"
    yield from latency_rows(ctx, times_tokens, times_cond, text_note)
    del text, tokenizer


def prepare_row(ctx: Context, sound: torch.Tensor) -> Row:
    from audiotoken_core.audio import prepare_audio

    times = timed(lambda: prepare_audio(sound, 44100), torch.device("cpu"), ctx.sizes.latency_repeats)
    return Row("latency", "audio -> tokens: of which prepare_audio", seconds(times),
               note="on the CPU, as audiotoken_core.audio does it: downmix + resample to 16 kHz")


def _with_text_encoder(base, text):
    out = copy.copy(base)
    out.text_encoders = [text]
    return out


def latency_rows(ctx: Context, times_tokens: list[float], times_cond: list[float], note: str):
    total = [a + b for a, b in zip(sorted(times_tokens), sorted(times_cond))]
    median_total = statistics.median(times_tokens) + statistics.median(times_cond)
    yield Row("latency", "tokens -> CONDITIONING", seconds(times_cond), note=note)
    yield Row("latency", "audio -> CONDITIONING (sum of medians)", _ms(median_total),
              judge("<= 20 ms", median_total <= LATENCY_GOAL_S, ctx), f"range {seconds(total)}")


def latency_nodes(ctx: Context):
    """The pack's own nodes in a ComfyUI host, through benchmarks/bench_encode.py (full-size models)."""
    from benchmarks import bench_encode

    bench_encode.setup_comfy("cuda" if ctx.on_gpu else "cpu")
    with torch.inference_mode():
        rows = bench_encode.bench("cuda" if ctx.on_gpu else "cpu", ctx.sizes.latency_repeats, 512, skip_unet=True)
    stages = {stage: (dtype, runs[None].wall) for stage, _, dtype, runs in rows}
    (tok_dtype, tok), (cond_dtype, cond) = list(stages.values())[:2]
    yield Row("latency", "audio -> tokens (10 s, 44.1 kHz stereo in)", seconds(tok),
              note=f"AudioTokenEncode node in ComfyUI ({os.environ['COMFYUI_PATH']}); {tok_dtype} BEATs")
    yield prepare_row(ctx, torch.randn(1, 2, 441000) * 0.1)  # bench_encode's input: 10 s, 44.1 kHz stereo
    yield from latency_rows(ctx, tok, cond, f"AudioTokenTextEncode node, host CLIP-L ({cond_dtype})")


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _params(module) -> str:
    return f"{sum(p.numel() for p in module.parameters()) / 1e6:.1f}M"


def attention(ctx: Context):
    dtype = torch.float16 if ctx.on_gpu else torch.float32
    beats = ctx.beats_as(dtype)
    wave = ctx.clips[next(iter(ctx.clips))][None].to(ctx.device)
    result = bench_attention.compare(beats, wave, ctx.sizes.attention_repeats)
    before = statistics.median(result["before"]["s"])
    for name, r in result.items():
        speed = before / statistics.median(r["s"])
        yield Row("attention", f"BEATs extract_layers, {ctx.sizes.clip_seconds:g} s, {_name(dtype)}: {name}",
                  seconds(r["s"]), note=f"{speed:.2f}x vs before; max rel diff from now {r['diff']:.1e}")


def trainer(ctx: Context):
    require_diffusers()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_throughput.main(list(ctx.sizes.throughput_args))
    text = out.getvalue()
    if code:
        raise RuntimeError(f"train_throughput exited {code}: {text[-200:]}")
    recipes = [line for line in text.splitlines() if line.startswith(("| (a)", "| (b)"))]
    if len(recipes) != 2:
        raise RuntimeError(f"unexpected train_throughput output: {text[-300:]}")
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in recipes]
    (name_a, _, ms_a, sps_a, *_), (name_b, mixed_b, ms_b, sps_b, *_) = cells
    ratio = float(sps_b) / float(sps_a)
    setup = next((line.replace("**", "") for line in text.splitlines() if line.startswith("**")), "")
    yield Row("trainer", "(a) original recipe, samples/s", sps_a, note=f"{ms_a} ms/step; {name_a[4:]}")
    yield Row("trainer", "(b) ours, samples/s", sps_b, note=f"{ms_b} ms/step; {name_b[4:]}")
    yield Row("trainer", "ours / original", f"{ratio:.2f}x", judge(">= 5x", ratio >= TRAINER_GOAL, ctx),
              " ".join(setup.split())[:200].replace("|", "/"))


def unet_share(ctx: Context):
    """The trainer's UNet part alone: forward under autocast, backward to the text conditioning (frozen UNet)."""
    from torch.utils.flop_counter import FlopCounterMode

    from train.data.frames import parse_size

    base = ctx.base()
    mixed = resolve("auto", ctx.device)
    dtype = torch_dtype(mixed)
    unet = base.denoiser.to(ctx.device, dtype)
    w, h = parse_size(ctx.sizes.frame)
    batch, down = 4, base.vae_downsample
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn(batch, unet.config.in_channels, h // down, w // down, generator=gen).to(ctx.device, dtype)
    steps = torch.randint(0, 1000, (batch,), generator=gen).to(ctx.device)
    hidden = torch.randn(batch, 77, base.widths["l"], generator=gen).to(ctx.device, dtype).requires_grad_(True)
    autocast = torch.autocast(ctx.device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()

    def step():
        with autocast:
            pred = unet(noisy, steps, hidden).sample
        pred.float().square().mean().backward()
        hidden.grad = None

    step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_total_flops()
    times = timed(step, ctx.device, ctx.sizes.unet_steps)
    achieved = flops / statistics.median(times) / 1e12
    name, peak = device_peak(ctx.device)
    matmul = matmul_tflops(ctx.device, ctx.sizes.matmul)
    shape = f"batch {batch}, {w}x{h} frames ({noisy.shape[-1]}x{noisy.shape[-2]} latents), {_name(dtype)}"
    yield Row("unet", "UNet forward+backward per step", seconds(times),
              note=f"{flops / 1e12:.3g} TFLOP counted; {shape}")
    yield Row("unet", "achieved TFLOP/s", f"{achieved:.3g}",
              note=f"measured {ctx.sizes.matmul}^3 {'bf16' if ctx.on_gpu else 'fp32'} matmul: {matmul:.3g} TFLOP/s")
    if peak is None:
        yield Row("unet", "share of bf16 peak", "unknown", ">= 40%", f"no datasheet peak for {name}")
    else:
        share = achieved / peak
        yield Row("unet", "share of bf16 peak", f"{share:.1%}", judge(">= 40%", share >= UNET_SHARE_GOAL, ctx),
                  f"{name}: {peak:g} TFLOP/s dense; {achieved / matmul:.0%} of the measured matmul")
    base.denoiser.to("cpu", torch.float32)


def device_peak(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "CPU", None
    name = torch.cuda.get_device_name(device)
    return name, bf16_peak(name)


def bf16_peak(device_name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key.upper() in device_name.upper()), None)


def matmul_tflops(device: torch.device, n: int, repeats: int = 10) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = timed(lambda: a @ b, device, repeats, warmup=3)
    return 2 * n**3 / statistics.median(times) / 1e12


def generate(ctx: Context):
    from train.generate import AudioImageGenerator

    base = ctx.base()
    dtype = torch.float16 if ctx.on_gpu else torch.float32  # train.generate's default dtype per device
    base.to(ctx.device, dtype)
    gen = AudioImageGenerator(base, copy.deepcopy(ctx.embedder).to(ctx.device), ctx.beats_as(torch.float32),
                              device=ctx.device, dtype=dtype)
    clip = next(iter(ctx.clips.values()))
    side, steps = ctx.sizes.picture, ctx.sizes.picture_steps

    def picture():
        held["image"] = gen.images_for_audio(clip, RATE, PROMPT, seeds=[0], steps=steps, height=side, width=side)[0][0]

    held = {}
    # the warm-up (kernel selection, allocations) takes all the steps: PNDM's schedule breaks for a few steps
    times = timed(picture, ctx.device, 1, warmup=1)
    if held["image"].size != (side, side):
        raise RuntimeError(f"the picture is {held['image'].size}, expected {side}x{side}")
    evals = len(gen.scheduler.timesteps)  # PNDM's warm-up steps add UNet evaluations
    yield Row("generate", f"one {side}x{side} picture, {steps} steps (train.generate)", seconds(times),
              note=f"{_name(dtype)}, guidance 7.5: {evals} UNet evaluations at batch 2, {_ms(times[0] / evals)} each "
                   f"incl. BEATs, CLIP and VAE decode; {type(gen.scheduler).__name__}, diffusers {diffusers_version()}")
    base.to("cpu", torch.float32)


# ---- the flow families' training step at their published sizes (random weights, built on the device)

# The published checkpoints' configs (their config.json files), as constructor arguments. The dry run shrinks
# every width and depth (TINY_OVERRIDES) and keeps the classes, the family code and the step.
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
              dropout_rate=0.1, layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
              tie_word_embeddings=False)
FLUX_DEV = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=(16, 56, 56))
FLUX_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                latent_channels=16, norm_num_groups=32, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
                use_quant_conv=False, use_post_quant_conv=False)
FLUX_SCHEDULER = dict(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                      base_image_seq_len=256, max_image_seq_len=4096)
QWEN_IMAGE = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                  num_attention_heads=24, joint_attention_dim=3584, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
QWEN_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                temperal_downsample=[False, True, True])  # latents_mean/std: the class defaults are the published
QWEN_SCHEDULER = dict(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                      base_image_seq_len=256, max_image_seq_len=8192, shift_terminal=0.02,
                      time_shift_type="exponential")
QWEN25_VL_7B_TEXT = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000,
                         rms_norm_eps=1e-6, bos_token_id=151643, eos_token_id=151645,
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [16, 24, 24]})
QWEN25_VL_7B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2)
QWEN25_VL_IDS = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652,
                     vision_end_token_id=151653)
TINY_OVERRIDES = {
    "clip_l": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, projection_dim=32),
    "t5xxl": dict(d_model=48, d_kv=8, d_ff=64, num_layers=1, num_heads=2, relative_attention_num_buckets=8),
    "flux": dict(in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
                 joint_attention_dim=48, pooled_projection_dim=32, axes_dims_rope=(2, 2, 4)),
    "flux_vae": dict(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                     block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4),
    "qwen_image": dict(in_channels=16, out_channels=4, num_layers=1, attention_head_dim=16, num_attention_heads=2,
                       joint_attention_dim=64, axes_dims_rope=(4, 6, 6)),
    "qwen_vae": dict(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
                     latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.8, 1.2, 2.0]),
    "qwen25_text": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=4,
                        num_key_value_heads=2, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                                "mrope_section": [2, 2, 4]}),
    "qwen25_vision": dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=64,
                          fullatt_block_indexes=[0]),
}
FLOW_FRAME = "1024x1024"  # both families' own size: 16x128x128 latents -> 4096 patches
FLOW_STEP_PARAMS = {"flux_step": "12B transformer", "qwen_image_step": "20B transformer"}


def _config(published: dict, part: str, full: bool) -> dict:
    return dict(published) if full else {**published, **TINY_OVERRIDES[part]}


@contextlib.contextmanager
def built_on(device: torch.device, dtype: torch.dtype):
    """Modules constructed inside are allocated on `device` in `dtype` at once: 12B or 20B of random weights never
    pass through host memory (nor fp32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def flow_tokenizers(folder: Path | None) -> tuple[dict, str]:
    """CLIP-L, T5 and Qwen2.5 tokenizers: the real files when `folder` (a ComfyUI `comfy/` folder, or a copy of its
    `sd1_tokenizer` and `text_encoders/{t5,qwen25}_tokenizer`) is given, else the tiny ones the tests use. The
    token counts are the same for CLIP (77) and T5 (512, padded); Qwen-Image's prompt is longer with the tiny
    byte-level tokenizer than with the real one (the rows say how long)."""
    if folder is not None:
        from transformers import CLIPTokenizer, Qwen2TokenizerFast, T5TokenizerFast

        folder = Path(folder)
        # ComfyUI's copy says 8192; FLUX.1-dev's tokenizer (and CLIP-L's 77 positions) say 77
        return ({"clip": CLIPTokenizer.from_pretrained(str(folder / "sd1_tokenizer"), model_max_length=77),
                 "t5": T5TokenizerFast.from_pretrained(str(folder / "text_encoders" / "t5_tokenizer")),
                 "qwen": Qwen2TokenizerFast.from_pretrained(str(folder / "text_encoders" / "qwen25_tokenizer"))},
                f"real tokenizers ({folder})")
    from testkit.flow import _clip_tokenizer, tiny_qwen_tokenizer, tiny_t5_tokenizer

    return {"clip": _clip_tokenizer(), "t5": tiny_t5_tokenizer(), "qwen": tiny_qwen_tokenizer()}, "tiny tokenizers"


def build_flux(full: bool, device: torch.device, dtype: torch.dtype, toks: dict):
    """Flux.1-dev as `train.families.flux.Flux` serves it: CLIP-L (pooled), T5-XXL, the 12B transformer."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from train.families.flux import Flux

    scheduler = FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER)
    with built_on(device, dtype):
        pipe = FluxPipeline(
            scheduler=scheduler,
            vae=AutoencoderKL(**_config(FLUX_VAE, "flux_vae", full)),
            text_encoder=CLIPTextModel(CLIPTextConfig(**_config(CLIP_L, "clip_l", full))), tokenizer=toks["clip"],
            text_encoder_2=T5EncoderModel(T5Config(**_config(T5_XXL, "t5xxl", full))), tokenizer_2=toks["t5"],
            transformer=FluxTransformer2DModel(**_config(FLUX_DEV, "flux", full)))
    return Flux(pipe, "gpu_suite: Flux.1-dev config, random weights").freeze()


def build_qwen_image(full: bool, device: torch.device, dtype: torch.dtype, toks: dict):
    """Qwen-Image as `train.families.qwen_image.QwenImage` serves it: Qwen2.5-VL-7B, the 20B transformer."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from train.families.qwen_image import QwenImage

    config = Qwen2_5_VLConfig(text_config=_config(QWEN25_VL_7B_TEXT, "qwen25_text", full),
                              vision_config=_config(QWEN25_VL_7B_VISION, "qwen25_vision", full), **QWEN25_VL_IDS)
    scheduler = FlowMatchEulerDiscreteScheduler(**QWEN_SCHEDULER)
    with built_on(device, dtype):
        pipe = QwenImagePipeline(
            scheduler=scheduler,
            vae=AutoencoderKLQwenImage(**_config(QWEN_VAE, "qwen_vae", full)),
            text_encoder=Qwen2_5_VLForConditionalGeneration(config), tokenizer=toks["qwen"],
            transformer=QwenImageTransformer2DModel(**_config(QWEN_IMAGE, "qwen_image", full)))
    return QwenImage(pipe, "gpu_suite: Qwen-Image config, random weights").freeze()


def _billions(module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def flow_step(ctx: Context, name: str, build):
    """One Embedder training micro-step as `train.loop` runs it for a flow family: `Trainer.loss` on a cached
    batch (BEATs features of a 5 s window, the VAE's latent distribution of one frame), backward through the
    transformer and the text encoder(s) with gradient checkpointing, the AdamW step on the Embedder."""
    require_diffusers()
    from train.config import TrainConfig
    from train.trainable import build_embedder
    from train.trainer import Trainer

    full, device = ctx.sizes.full, ctx.device
    mixed = resolve("auto", device)
    dtype = torch_dtype(mixed)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    toks, tok_note = flow_tokenizers(ctx.tokenizers)
    started = time.monotonic()
    family = build(full, device, dtype, toks)
    built_s = time.monotonic() - started
    weights_gib = torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None
    family.enable_gradient_checkpointing()  # built where prepare_step_models would move them, in its precision
    cfg = TrainConfig(batch_size=1, grad_accum=1, mixed_precision=mixed, gradient_checkpointing=True)
    torch.manual_seed(0)
    embedder = build_embedder(cfg, family, ctx.beats.embed_dim, "BEATs").to(device).train()
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype != torch.float32 else contextlib.nullcontext
    trainer = Trainer(cfg, family, embedder, device=device, weight_dtype=dtype, autocast=autocast)
    from train.data.frames import parse_size

    down = family.vae_downsample
    w, h = parse_size(ctx.flow_frame) if full else (32, 32)
    if w % (2 * down) or h % (2 * down):
        raise ValueError(f"--flow-frame {w}x{h}: sides must be multiples of {2 * down} (2x2 latent patches)")
    channels = int(family.denoiser.config.in_channels) // 4  # the 2x2 patches' channels
    gen = torch.Generator().manual_seed(0)
    frames = 248 if full else 8  # BEATs' frames of a 5 s window, as the cache holds them
    features = torch.randn(1, frames, embedder.in_dim, generator=gen).to(device, torch.float16)
    mean = torch.randn(1, channels, h // down, w // down, generator=gen).to(device)
    std = torch.full_like(mean, 0.05)
    from train.batches import Batch

    batch = Batch.cached(features, mean, std)
    opt = torch.optim.AdamW(embedder.parameters(), lr=1e-5, weight_decay=1e-2)
    state = {"i": 0, "loss": None}

    def step():
        loss, _ = trainer.loss(batch, state["i"])
        state["i"] += 1
        loss.backward()
        if state["i"] == 1:  # the gradient must reach every head through the frozen models
            dead = [h for h, head in embedder.heads.items()
                    if not any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in head.parameters())]
            if dead:
                raise RuntimeError(f"no gradient reached the Embedder's {', '.join(dead)} head")
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["loss"] = float(loss.detach())

    times = timed(step, device, ctx.sizes.flow_steps, warmup=1)
    if not math.isfinite(state["loss"]):
        raise RuntimeError(f"non-finite loss {state['loss']}")
    inputs = trainer._prompt_ids(1)
    per_encoder = inputs if isinstance(inputs[0], tuple) else [inputs]  # Flux: (ids, marks) per encoder
    text_tokens = [int(ids.shape[-1]) for ids, *_ in per_encoder]
    with torch.no_grad():
        cond = family.encode(inputs, None)["prompt_embeds"]
    patches = (h // down // 2) * (w // down // 2)
    what = (f"{family.kind}: transformer {_billions(family.denoiser)}, text "
            f"{' + '.join(_billions(te) for te in family.text_encoders)}; {_name(dtype)}, gradient checkpointing, "
            f"batch 1, {w}x{h} frame -> {channels}x{h // down}x{w // down} latents ({patches} "
            f"patches), text tokens in {'/'.join(map(str, text_tokens))}, {cond.shape[1]} to the transformer "
            f"({tok_note}); built in {built_s:.0f} s; loss {state['loss']:.3g}")
    yield Row(name, "Embedder training step (loss + backward + AdamW), s/step", seconds(times),
              note=what.replace("|", "/"))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        yield Row(name, "peak GPU memory", f"{peak:.1f} GiB", note=f"of which weights {weights_gib:.1f} GiB")
    else:
        yield Row(name, "peak GPU memory", "-", note="not on a GPU (dry run)")
    del trainer, embedder, family, opt, batch


def flux_step(ctx: Context):
    yield from flow_step(ctx, "flux_step", build_flux)


def qwen_image_step(ctx: Context):
    yield from flow_step(ctx, "qwen_image_step", build_qwen_image)


SECTIONS = {"precision": precision, "latency": latency, "attention": attention, "trainer": trainer,
            "unet": unet_share, "generate": generate, "flux_step": flux_step, "qwen_image_step": qwen_image_step}


def heading(sizes: Sizes, device: torch.device, dry: bool) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        where = f"{props.name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
    else:
        where = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    size = "DRY RUN: tiny models on the CPU" if dry else "real sizes (BEATs iter3+, Embedder 2304->768, SD1.5, Flux.1-dev, Qwen-Image)"
    cuda = f", CUDA {torch.version.cuda}" if device.type == "cuda" else ""
    return (f"## GPU suite: {where}\n\n{size}; random weights. torch {torch.__version__}{cuda}, diffusers "
            f"{diffusers_version() or 'not installed'}, Python {sys.version.split()[0]}; budget {sizes.budget_s:.0f} s.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny models on the CPU (< 1 min): checks the suite itself")
    p.add_argument("--out", type=Path, help="also write the Markdown table here")
    p.add_argument("--device", default=None, help="default: cuda when available (cpu for --dry-run)")
    p.add_argument("--budget-s", type=float, default=None, help="stop starting sections after this many seconds")
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run these sections only")
    p.add_argument("--tokenizers", type=Path, default=None,
                   help="a ComfyUI comfy/ folder (or a copy of its sd1_tokenizer and text_encoders/t5_tokenizer, "
                        "qwen25_tokenizer): the flux_step / qwen_image_step rows tokenize with the real files "
                        "(default: the tiny tokenizers, which make Qwen-Image's prompt longer than the real one)")
    p.add_argument("--flow-frame", default=None, help=f"training frame WxH of the flux_step / qwen_image_step rows "
                   f"(default {FLOW_FRAME}; the trainer's --frame-size default is 512x320; the dry run uses 32x32)")
    args = p.parse_args(argv)
    started = time.monotonic()
    device = torch.device(args.device or ("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda"))
    if device.type != "cuda" and not args.dry_run:
        print("warning: no GPU; real sizes on the CPU take many minutes (use --dry-run to check the suite)",
              file=sys.stderr)
    if args.dry_run:
        torch.set_num_threads(1)  # tiny models are dispatch-bound: one thread is faster and steadier on a shared CPU
    sizes = dry_sizes() if args.dry_run else full_sizes(str(device))
    if args.budget_s:
        sizes = dataclasses.replace(sizes, budget_s=args.budget_s)
    report = Report(args.out, heading(sizes, device, args.dry_run))
    with tempfile.TemporaryDirectory(prefix="gpu_suite_") as work:
        try:
            ctx = Context(sizes, device, Path(work), args.tokenizers, args.flow_frame)
        except Exception as exc:
            report.add(Row("setup", "ERROR", "-", note=f"{type(exc).__name__}: {exc}"[:300]))
            return 1
        for name, fn in SECTIONS.items():
            if not args.only or name in args.only:
                run_section(name, fn, ctx, report)
    report.add(Row("suite", "wall time", f"{time.monotonic() - started:.1f} s", note="setup included"))
    print("\n" + report.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
