"""Time resampling to 16 kHz: ``audiotoken_core.resample`` against torchaudio, side by side in one run.

    python -m benchmarks.bench_resample [--threads 1] [--clock cpu|wall] [--rates 8000 ... 96000] [--seconds 10 600]
                                        [--repeats 7]

For every rate and clip length (mono float32 noise, one clip) it times ours, torchaudio's
``functional.resample`` (what the pack called before; it rebuilds its filter on every call) and
``transforms.Resample`` (the filter built once, so only the convolution is timed). One untimed call of each
first (our plan, torchaudio's FFT/conv setup), then the three alternate so load on a shared machine hits them
alike. Times are medians over the repeats (10-minute clips get at most 3) of process CPU seconds by default:
robust to other jobs on the machine, and with one thread they equal the work done. With more threads, CPU
seconds also count threads spinning while they wait for a busy core, so use ``--clock wall`` there. Prints a Markdown table, the largest
relative difference (max|ours - ref| / max|ref|) per row, and exits 1 if ours is slower than
``functional.resample`` on any row or differs by more than 1e-6. torchaudio, the reference, is imported inside
``main`` only: the pack never imports it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from audiotoken_core.resample import resample
from benchmarks import provenance

RATES = (8000, 11025, 22050, 32000, 44100, 48000, 96000)
TARGET = 16000
TOL = 1e-6


def timed(fn, wave: torch.Tensor, clock) -> tuple[float, torch.Tensor]:
    start = clock()
    out = fn(wave)
    return clock() - start, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", type=int, nargs="+", default=list(RATES))
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 600.0])
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time or wall-clock time")
    p.add_argument("--repeats", type=int, default=7, help="per row (at most 3 for clips over a minute)")
    args = p.parse_args(argv)

    import torchaudio
    import torchaudio.functional as AF

    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"{provenance.line((args.threads,))}\n")
    print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, {args.threads} thread(s), "
          f"{'CPU' if args.clock == 'cpu' else 'wall-clock'} seconds, median of the repeats")
    print()
    print("| rate → 16 kHz | clip | ours (s) | torchaudio `functional.resample` (s) | speedup "
          "| torchaudio `transforms.Resample` (s) | speedup | max rel diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    failed = []
    for seconds in args.seconds:
        for rate in args.rates:
            gen = torch.Generator().manual_seed(rate)
            wave = torch.randn(1, int(rate * seconds), generator=gen) * 0.1
            cached = torchaudio.transforms.Resample(rate, TARGET)
            ours_fn = lambda w, rate=rate: resample(w, rate, TARGET)
            functional_fn = lambda w, rate=rate: AF.resample(w, rate, TARGET)
            for fn in (ours_fn, functional_fn, cached):
                fn(wave[:, : rate // 10])
            times = {"ours": [], "functional": [], "cached": []}
            repeats = args.repeats if seconds <= 60 else min(args.repeats, 3)
            for _ in range(repeats):
                t, ours = timed(ours_fn, wave, clock)
                times["ours"].append(t)
                t, ref = timed(functional_fn, wave, clock)
                times["functional"].append(t)
                t, _ = timed(cached, wave, clock)
                times["cached"].append(t)
            med = {k: statistics.median(v) for k, v in times.items()}
            diff = ((ours - ref).abs().max() / ref.abs().max()).item() if ours.shape == ref.shape else float("inf")
            clip = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
            print(f"| {rate / 1000:g} kHz | {clip} | {med['ours']:.4f} | {med['functional']:.4f} "
                  f"| {med['functional'] / med['ours']:.1f}x | {med['cached']:.4f} | {med['cached'] / med['ours']:.1f}x "
                  f"| {diff:.1e} |", flush=True)
            if med["ours"] > med["functional"] or diff > TOL:
                failed.append(f"{rate} Hz, {clip}")
    if failed:
        print(f"\nslower than torchaudio's functional.resample or off by more than {TOL:g}: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
