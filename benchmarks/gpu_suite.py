"""Every GPU goal of the project in one run: real model sizes, random weights, nothing downloaded.

Measures (one Markdown table, with the device name, to stdout and to --out):
  precision   fp16 / bf16 BEATs (+ fp32 Embedder, as the nodes run them) against fp32, on synthesised clips;
  latency     audio -> tokens and tokens -> CONDITIONING for a 10 s clip (the nodes when COMFYUI_PATH is an
              importable ComfyUI, else the core path with the SD1.5 text encoder); goal <= 20 ms in all;
  attention   BEATs with the original arithmetic, the previous and the current attention (bench_attention.py);
  trainer     original recipe vs ours in samples/s at SD1.5 size, 512x320 frames (train_throughput.py); goal 5x;
  unet        achieved TFLOP/s of the trainer's UNet step (FlopCounterMode) as a share of the bf16 peak; goal 40%;
  generate    one 512x512, 30-step picture through train.generate (needs diffusers).
Each section is guarded (a failure becomes an ERROR row, the rest still run) and the whole run keeps to
--budget-s (a section that would not fit becomes a SKIPPED row).

On any machine with an NVIDIA GPU, from the repository root, in an environment with torch (CUDA), transformers,
accelerate, safetensors and, for the generate row, diffusers (`pip install -e ".[train]"` gives all of them):

    PYTHONUNBUFFERED=1 python -m benchmarks.gpu_suite --out gpu_suite.md

It downloads nothing (every model is built with random weights at its real size, SD1.5 and BEATs iter3+), and
--budget-s (default 330) bounds the whole run. Where pip cannot reach an index, install
wheels fetched elsewhere first, e.g. `pip install --no-index --no-deps --target /tmp/site diffusers-*.whl
importlib_metadata-*.whl` and `PYTHONPATH=/tmp/site`; docs/benchmarks.md records the runs so far.

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

from benchmarks import bench_attention, train_throughput
from benchmarks.toyworld import sounds
from train.precision import resolve_mixed_precision, torch_dtype

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
    # seconds a section needs at least; one that would not fit in what is left is skipped
    needs_s: dict = field(default_factory=dict)


def full_sizes(device: str) -> Sizes:
    return Sizes(
        full=True, beats_cfg=train_throughput.FULL_BEATS_CFG, width=768, frame="512x320",
        clip_seconds=10.0, clips=4, latency_repeats=30, attention_repeats=10, unet_steps=10,
        picture=512, picture_steps=30, matmul=8192, budget_s=330.0,
        throughput_args=("--full", "--device", device, "--rounds", "2", "--steps", "6", "--warmup", "2"),
        needs_s={"precision": 20, "latency": 20, "attention": 10, "trainer": 90, "unet": 45, "generate": 45},
    )


def dry_sizes() -> Sizes:
    from train.tiny.beats import tiny_official_cfg
    from train.tiny.sd import SD1_WIDTH

    return Sizes(
        full=False, beats_cfg=tiny_official_cfg(), width=SD1_WIDTH, frame="64x40",
        clip_seconds=2.0, clips=4, latency_repeats=2, attention_repeats=1, unet_steps=2,
        picture=32, picture_steps=2, matmul=256, budget_s=55.0,
        throughput_args=("--device", "cpu", "--rounds", "1", "--steps", "1", "--warmup", "1", "--window", "1"),
        needs_s={"precision": 2, "latency": 2, "attention": 2, "trainer": 8, "unet": 3, "generate": 3},
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

    def __init__(self, sizes: Sizes, device: torch.device, work: Path):
        from audiotoken_core.embedder import AudioEmbedder

        self.sizes, self.device, self.work = sizes, device, work
        self.deadline = time.monotonic() + sizes.budget_s
        self.beats = bench_attention.random_beats(sizes.beats_cfg)  # fp32 master copy on the CPU
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
            from train.tiny.sd import write_tiny_sd, write_tiny_tokenizer

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
    names = ["fp16"] + (["bf16"] if device.type != "cuda" or torch.cuda.is_bf16_supported() else [])
    return {name: torch_dtype(name) for name in names}


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
    """The core equivalent of the two nodes: AudioTokenizer.encode, then train.inject.PromptEncoder on CLIP."""
    from audiotoken_core.resample import resample
    from train.inject import PromptEncoder

    beats_dtype = torch.float16 if ctx.on_gpu else torch.float32  # what nodes.runtime.pick_dtype gives
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
    prompts = PromptEncoder(_with_text_encoder(base, text))

    @torch.inference_mode()
    def conditioning():
        held["cond"] = prompts.encode(prompts.ids(PROMPT, 1, 1, ctx.device), held["tokens"])

    times_cond = timed(conditioning, ctx.device, ctx.sizes.latency_repeats)
    text_note = f"CLIP text encoder ({_params(text)}, {_name(clip_dtype)}), PromptEncoder"
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
    stages = {stage: (dtype, times) for stage, _, dtype, times in rows}
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
    mixed = resolve_mixed_precision("auto", ctx.device)
    dtype = torch_dtype(mixed)
    unet = base.unet.to(ctx.device, dtype)
    w, h = parse_size(ctx.sizes.frame)
    batch, down = 4, base.vae_downsample
    gen = torch.Generator().manual_seed(0)
    noisy = torch.randn(batch, unet.config.in_channels, h // down, w // down, generator=gen).to(ctx.device, dtype)
    steps = torch.randint(0, 1000, (batch,), generator=gen).to(ctx.device)
    hidden = torch.randn(batch, 77, base.widths["l"], generator=gen).to(ctx.device, dtype).requires_grad_(True)
    autocast = torch.autocast(ctx.device.type, dtype=dtype) if mixed != "fp32" else contextlib.nullcontext()

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
    base.unet.to("cpu", torch.float32)


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


SECTIONS = {"precision": precision, "latency": latency, "attention": attention, "trainer": trainer,
            "unet": unet_share, "generate": generate}


def heading(sizes: Sizes, device: torch.device, dry: bool) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        where = f"{props.name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs)"
    else:
        where = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    size = "DRY RUN: tiny models on the CPU" if dry else "real sizes (BEATs iter3+, Embedder 2304->768, SD1.5)"
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
            ctx = Context(sizes, device, Path(work))
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
