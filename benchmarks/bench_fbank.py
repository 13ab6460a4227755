"""Time BEATs' fbank front end: batched ``compute_fbank`` against one ``kaldi.fbank`` call per clip.

    python -m benchmarks.bench_fbank [--clips 32] [--seconds 10] [--threads 2] [--repeats 5] [--device cpu|cuda]

The per-clip loop is what ``compute_fbank`` did before it was batched (same arguments, same normalisation), and
needs torchaudio, the reference (imported in that function only: the pack itself never imports it).
Runs alternate between the two so load on a shared machine hits both alike; medians are reported. Prints a
Markdown table row (header with --header) and the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from audiotoken_core.beats.fbank import FBANK_MEAN, FBANK_STD, PCM_SCALE, compute_fbank
from benchmarks import provenance


def per_clip(wave: torch.Tensor) -> torch.Tensor:
    """The former implementation: torchaudio's kaldi.fbank on each clip, then BEATs' normalisation."""
    from torchaudio.compliance import kaldi

    feats = [
        kaldi.fbank(clip[None] * PCM_SCALE, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)
        for clip in wave
    ]
    return (torch.stack(feats) - FBANK_MEAN) / (2 * FBANK_STD)


def timed(fn, wave: torch.Tensor) -> tuple[float, torch.Tensor]:
    if wave.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(wave)
    if wave.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--header", action="store_true", help="print the table header first")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    wave = (torch.randn(args.clips, int(args.seconds * 16000), generator=gen) * 0.1).to(args.device)
    batched = lambda w: compute_fbank(w)[0]

    # One untimed call each: builds the cached window/mel matrix, warms FFT plans and (on CUDA) the context.
    per_clip(wave[:1])
    batched(wave[:1])
    before, after = [], []
    for _ in range(args.repeats):
        t, ref = timed(per_clip, wave)
        before.append(t)
        t, ours = timed(batched, wave)
        after.append(t)
    old, new = statistics.median(before), statistics.median(after)
    diff = (ours - ref).abs().max().item()

    if args.header:
        print(f"{provenance.line((args.threads,))}\n")
        print("| device | threads | clips x s | per-clip kaldi.fbank (s) | batched compute_fbank (s) | speedup "
              "| max abs diff |")
        print("|---|---|---|---|---|---|---|")
    print(f"| {args.device} | {args.threads} | {args.clips} x {args.seconds:g} | {old:.3f} | {new:.3f} "
          f"| {old / new:.1f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
