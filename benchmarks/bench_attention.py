"""Time BEATs' attention as the original computes it, as this package did before, and as it does now, in one run.

    python -m benchmarks.bench_attention [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--batch 1] [--threads 2]

Variants (the same module and weights; only the attention arithmetic and the position bias change):
  original  the reference's arithmetic: explicit scores, row-max shift x32, bias, float32 softmax, product;
            bias from buckets built on the host every call, looked up as ``[N, N, H]`` and permuted;
  before    SDPA with that per-call, permuted bias (this package up to the change that added this script);
  now       SDPA with ``Encoder.position_bias``: buckets kept on the device, bias gathered head-major.

Full size (the released iter3+ cfg: 12 layers, 768 wide, 12 heads; random weights), 10 s clips at 16 kHz,
``extract_layers`` end to end (fbank included). The variants alternate in rounds, so load on a shared machine
hits them alike; medians are reported, with each variant's largest difference from ``now``
(max |a - b| / max |b| over the 12 layers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

from audiotoken_core import precision
from audiotoken_core.beats.model import SelfAttention, relative_position_buckets
from benchmarks import provenance
# The original divides the scaled query by 32 and multiplies the max-shifted scores back by it (fp16 headroom).
SHIFT = 32.0


def original_attention(q, k, v, attn_mask=None):
    scores = (q * (q.shape[-1] ** -0.5 / SHIFT)) @ k.transpose(-2, -1)
    scores = (scores - scores.amax(dim=-1, keepdim=True)) * SHIFT
    if attn_mask is not None:
        scores = scores + attn_mask
    return torch.softmax(scores, dim=-1, dtype=torch.float32).type_as(scores) @ v


def per_call_position_bias(encoder, length: int, device) -> torch.Tensor:
    buckets = relative_position_buckets(length, encoder.cfg.num_buckets, encoder.cfg.max_distance)
    return encoder.relative_attention_bias(buckets.to(device)).permute(2, 0, 1)


# variant -> (attention, position bias); None keeps the model's own
VARIANTS = {
    "original": (original_attention, per_call_position_bias),
    "before": (F.scaled_dot_product_attention, per_call_position_bias),
    "now": (None, None),
}


def use_variant(beats, name: str) -> None:
    attend, bias = VARIANTS[name]
    for module in beats.modules():
        if isinstance(module, SelfAttention):
            _override(module, "attend", attend)
    _override(beats.encoder, "position_bias", bias and types.MethodType(bias, beats.encoder))


def _override(module, name: str, value) -> None:
    """Shadow the class attribute on this instance, or (value None) remove the shadow again."""
    if value is None:
        module.__dict__.pop(name, None)
    else:
        module.__dict__[name] = value


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn, device: torch.device) -> tuple[float, float]:
    """Wall and process CPU seconds of one call; on a shared CPU the second is what the call itself cost."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(((x.float() - y.float()).abs().max() / y.float().abs().max()).item() for x, y in zip(a, b))


@torch.inference_mode()
def compare(beats, wave: torch.Tensor, repeats: int, variants=tuple(VARIANTS)) -> dict:
    """``{variant: {"s": [wall s per call], "cpu": [CPU s per call], "diff": max rel diff from now}}``."""
    device = next(beats.parameters()).device
    outputs, times = {}, {name: [] for name in variants}
    for name in variants:  # warm-up: kernel choice, allocator, cached tables
        use_variant(beats, name)
        outputs[name] = beats.extract_layers(wave)
    for _ in range(repeats):
        for name in variants:
            use_variant(beats, name)
            times[name].append(_seconds(lambda: beats.extract_layers(wave), device))
    use_variant(beats, "now")
    reference = outputs.get("now") or beats.extract_layers(wave)
    return {name: {"s": [w for w, _ in times[name]], "cpu": [c for _, c in times[name]],
                   "diff": max_rel_diff(outputs[name], reference)} for name in variants}


def main(argv: list[str] | None = None) -> int:
    from testkit.beats import random_beats

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=precision.NAMES, default="fp32")
    p.add_argument("--batch", type=int, default=1, help="10 s clips per call")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5, help="timed calls per path (alternated)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    beats = random_beats(device=device, dtype=precision.torch_dtype(args.dtype))
    gen = torch.Generator().manual_seed(0)
    wave = (torch.randn(args.batch, int(args.seconds * 16000), generator=gen) * 0.1).to(device)
    result = compare(beats, wave, args.repeats)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n{provenance.line()}")
    print(f"\nBEATs iter3+ size, {args.batch} x {args.seconds:g} s, {args.dtype}, {where}, torch {torch.__version__}; "
          f"median of {args.repeats} alternated calls (min-max)\n")
    print(table(result))
    return 0


def table(result: dict) -> str:
    med = {name: (statistics.median(r["s"]), statistics.median(r["cpu"])) for name, r in result.items()}
    base = med.get("before")
    lines = ["| variant | wall s per call, median (min-max) | CPU s per call, median | vs before (wall / CPU) "
             "| max rel diff from now |", "|---|---:|---:|---:|---:|"]
    for name, r in result.items():
        wall, cpu = med[name]
        speed = f"{base[0] / wall:.2f}x / {base[1] / cpu:.2f}x" if base else "-"
        lines.append(f"| {name} | {wall:.3f} ({min(r['s']):.3f}-{max(r['s']):.3f}) | {cpu:.3f} | {speed} "
                     f"| {r['diff']:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
