"""Time a frame schedule (AudioToken Schedule's core) against windows mode at the same hop, for several fps.

Real sizes, random weights: BEATs iter3+ (12 layers, 768 wide, 90M) and the official Embedder shape
(2304 -> 768), fp32 on the CPU. The schedule's cost is split into BEATs + Embedder (keyframe windows), the
rest of the plan (window cutting, smoothing, loudness) and the per-frame interpolation. With `--text-encode`
(run by a host venv's Python with COMFYUI_PATH set) both sides also go through the pack's real Text Encode
node on a full-size CLIP-L: once per keyframe then interpolated for the schedule, once per window for windows
mode (`TextEncodeStage`).

Two comparisons, because `AudioTokenizer.encode(mode="windows")` has no hop of its own (its hop is its window):
- `same windows`: window = hop (0.5 s), trailing, against `encode(mode="windows", duration_s=hop)`. The schedule
  then hears exactly the windows that windows mode hears, and the bench checks the tokens agree.
- `overlapping`: 2 s windows every 0.5 s (centred), against the same primitives windows mode is built from
  (`audio.iter_windows` with that hop + `AudioTokenizer.encode_windows`), i.e. windows mode with a hop.

    python -m benchmarks.bench_schedule [--seconds 60] [--fps 8 24 60] [--hop 0.5] [--window 2] [--threads 2]
                                           [--repeats 1] [--clock wall|cpu] [--only same|overlapping]
                                           [--text-encode WORKDIR]

`--clock cpu` times with the process's CPU time: on a machine other jobs share, wall time mostly measures
their load; with `--threads 1` CPU time stays close to the unloaded wall time. Prints Markdown tables.
Needs no ComfyUI without `--text-encode`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from audiotoken_core.audio import TARGET_RATE, iter_windows
from audiotoken_core.pipeline import AudioTokenizer
from audiotoken_core.schedule import ScheduledTokens, encode_schedule
from benchmarks import provenance
from testkit.beats import full_size_audio

CLIP_SEQ, CLIP_WIDTH = 77, 768  # an SD1.x conditioning, to price interpolating Text Encode's output per frame
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


@dataclass
class Timing:
    fps: float
    frames: int
    keys: int
    windows: int
    beats_s: float
    plan_s: float
    interp_s: float
    cond_interp_s: float
    text_s: float | None
    baseline_s: float
    baseline_windows: int
    baseline_text_s: float | None = None

    @property
    def schedule_s(self) -> float:
        return self.beats_s + self.plan_s + self.interp_s + (self.text_s or 0.0)

    @property
    def baseline_total_s(self) -> float:
        return self.baseline_s + (self.baseline_text_s or 0.0)


def real_size_tokenizer() -> AudioTokenizer:
    return AudioTokenizer(*full_size_audio())


class TextEncodeStage:
    """The pack's own AudioToken Text Encode node on a full-size SD1 CLIP-L, in-process in a real ComfyUI.

    CLIP-L comes from a tiny SD1.5 checkpoint (random, full-size text encoder: host contract §8.3), loaded in
    fp32 as on a CPU user's machine with `--fp32-text-enc`. The node encodes once per keyframe (or once per
    window for windows mode) and, for a schedule, interpolates the conditionings to every frame; all of that
    is timed, including the host's tokenizer and the textual-inversion files the node writes.
    Needs `COMFYUI_PATH` and a Python that can import that ComfyUI (a host venv of scripts/host_env.sh).
    """

    PROMPT = "a photo of <audio>"

    def __init__(self, workdir: Path):
        from testkit.comfy import sd15_clip, write_tiny_sd15_checkpoint
        from testkit.host import comfy_in_process, pack_module

        if not os.environ.get("COMFYUI_PATH"):
            sys.exit("--text-encode needs COMFYUI_PATH=/path/to/ComfyUI")
        comfy_in_process(os.environ["COMFYUI_PATH"])
        (workdir / "embeddings").mkdir(parents=True, exist_ok=True)
        checkpoint = write_tiny_sd15_checkpoint(workdir / "tiny_sd15.safetensors")
        self.clip = sd15_clip(checkpoint, [str(workdir / "embeddings")])
        self.node = pack_module("text_encode").AudioTokenTextEncode
        self.types = pack_module("types")
        self.schedule_tokens = pack_module("schedule").schedule_tokens

    def _timed(self, tokens) -> float:
        start = clock()
        cond = self.node.execute(self.clip, tokens, self.PROMPT)[0]
        seconds = clock() - start
        assert cond[0][0].shape[0] == tokens.batch_size, (cond[0][0].shape, tokens.batch_size)
        return seconds

    def schedule(self, result: ScheduledTokens) -> float:
        """Keyframe tokens -> per-frame CONDITIONING, as Text Encode does after AudioToken Schedule."""
        return self._timed(self.schedule_tokens(result, info={}))

    def windows(self, tokens: dict) -> float:
        """Windows mode's token sets -> one CONDITIONING per window, as Text Encode does after Encode."""
        return self._timed(self.types.AudioTokens({n: t.detach().cpu().float() for n, t in tokens.items()}))


class BeatsClock:
    """Wraps `tokenizer.encode_windows` to time BEATs + Embedder inside an end-to-end schedule run."""

    def __init__(self, tokenizer: AudioTokenizer):
        self.tokenizer, self.real, self.seconds, self.windows = tokenizer, tokenizer.encode_windows, 0.0, 0

    def __enter__(self):
        def timed(windows, *args, **kwargs):
            start = clock()
            out = self.real(windows, *args, **kwargs)
            self.seconds += clock() - start
            self.windows += next(iter(out.tokens.values())).shape[0]
            return out

        self.tokenizer.encode_windows = timed
        return self

    def __exit__(self, *exc):
        del self.tokenizer.encode_windows  # back to the class's method


def run_schedule(tokenizer, wave, fps, hop, window, align, smoothing,
                 text: TextEncodeStage | None = None) -> tuple[Timing, ScheduledTokens, dict]:
    with BeatsClock(tokenizer) as beats:
        start = clock()
        result = encode_schedule(tokenizer, wave, TARGET_RATE, fps=fps, hop_s=hop, window_s=window, align=align,
                                 smoothing_s=smoothing)
        total = clock() - start
    start = clock()
    per_frame = result.frame_tokens()
    interp = clock() - start
    # The part of Text Encode that grows with the frames: interpolating K conditionings to F.
    conds = torch.randn(result.schedule.n_keys, CLIP_SEQ, CLIP_WIDTH)
    start = clock()
    result.schedule.interpolate(conds)
    cond_interp = clock() - start
    timing = Timing(fps, result.schedule.n_frames, result.schedule.n_keys, beats.windows, beats.seconds,
                    total - beats.seconds, interp, cond_interp, None if text is None else text.schedule(result),
                    0.0, 0)
    return timing, result, per_frame


def windows_mode(tokenizer, wave, hop) -> tuple[float, dict]:
    start = clock()
    tokens = tokenizer.encode(wave, TARGET_RATE, mode="windows", duration_s=hop).tokens
    return clock() - start, tokens


def windows_with_hop(tokenizer, wave, hop, window) -> tuple[float, dict]:
    start = clock()
    tokens = tokenizer.encode_windows(iter_windows(wave, window, hop)).tokens
    return clock() - start, tokens


def bench(tokenizer, wave, fps_list, hop, window, overlapping: bool, smoothing: float, repeats: int,
          text: TextEncodeStage | None = None) -> list[Timing]:
    rows = []
    for fps in fps_list:
        runs, baselines = [], []
        # Baseline and schedule alternate, so drift in a shared machine's load hits both alike; best of each.
        for _ in range(repeats):
            if overlapping:
                base_s, base = windows_with_hop(tokenizer, wave, hop, window)
                timing, _, _ = run_schedule(tokenizer, wave, fps, hop, window, "centred", smoothing, text)
            else:
                base_s, base = windows_mode(tokenizer, wave, hop)
                timing, result, _ = run_schedule(tokenizer, wave, fps, hop, hop, "trailing", 0.0, text)
                # trailing, window = hop: keyframe k hears [(k-1) hop, k hop], windows-mode window k-1
                torch.testing.assert_close(result.keyframes["l"][1:], base["l"], rtol=1e-3, atol=1e-4)
            timing.baseline_s = base_s
            timing.baseline_text_s = None if text is None else text.windows(base)
            runs.append(timing)
            baselines.append((base_s, timing.baseline_text_s))
            print(f"  fps {fps:g}: schedule {timing.schedule_s:.2f} s, baseline {timing.baseline_total_s:.2f} s",
                  file=sys.stderr)
        best = min(runs, key=lambda t: t.schedule_s)
        best.baseline_s, best.baseline_text_s = min(baselines, key=lambda b: b[0] + (b[1] or 0.0))
        best.baseline_windows = next(iter(base.values())).shape[0]
        rows.append(best)
    return rows


def table(rows: list[Timing], title: str) -> str:
    lines = [f"\n{title}\n",
             "| fps | frames | keyframes | BEATs windows (schedule / baseline) | BEATs + Embedder (s) | plan, cut, "
             "smoothing, loudness (s) | interpolate tokens (s) | interpolate [K,77,768] cond. (s) | Text Encode "
             "(schedule / baseline, s) | schedule total (s) | baseline total (s) | ratio |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        text = "not run" if r.text_s is None else f"{r.text_s:.2f} / {r.baseline_text_s:.2f}"
        lines.append(f"| {r.fps:g} | {r.frames} | {r.keys} | {r.windows} / {r.baseline_windows} | {r.beats_s:.2f} | "
                     f"{r.plan_s:.3f} | {r.interp_s:.4f} | {r.cond_interp_s:.3f} | {text} | {r.schedule_s:.2f} | "
                     f"{r.baseline_total_s:.2f} | {r.schedule_s / r.baseline_total_s:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, nargs="+", default=[8.0, 24.0, 60.0])
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=2.0, help="window of the overlapping comparison")
    parser.add_argument("--smoothing", type=float, default=0.5, help="sigma in seconds (overlapping comparison)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="alternated runs per fps; the best of each is shown")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall")
    parser.add_argument("--only", choices=["same", "overlapping"], help="run one comparison")
    parser.add_argument("--text-encode", type=Path, metavar="WORKDIR",
                        help="also time the pack's Text Encode node on a full-size CLIP-L (needs COMFYUI_PATH); "
                             "its tiny checkpoint is written to WORKDIR")
    opts = parser.parse_args()
    global clock
    clock = CLOCKS[opts.clock]
    torch.set_num_threads(opts.threads)
    text = None if opts.text_encode is None else TextEncodeStage(opts.text_encode)
    tokenizer = real_size_tokenizer()
    wave = torch.randn(1, int(opts.seconds * TARGET_RATE), generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.inference_mode():
        tokenizer.encode(wave[:, : int(opts.window * TARGET_RATE)], TARGET_RATE)  # warm-up
        out = [provenance.line((opts.threads,)), "",
               f"torch {torch.__version__}, {opts.threads} thread(s), {opts.seconds:g} s of audio, hop {opts.hop:g} s, "
               f"{opts.clock} clock, best of {opts.repeats}"]
        if opts.only in (None, "same"):
            rows = bench(tokenizer, wave, opts.fps, opts.hop, opts.hop, False, 0.0, opts.repeats, text)
            out.append(table(rows, f"Same windows: {opts.hop:g} s windows every {opts.hop:g} s (trailing) vs "
                                   f"encode(mode='windows', duration_s={opts.hop:g})"))
        if opts.only in (None, "overlapping"):
            rows = bench(tokenizer, wave, opts.fps, opts.hop, opts.window, True, opts.smoothing, opts.repeats,
                         text)
            out.append(table(rows, f"Overlapping: {opts.window:g} s windows every {opts.hop:g} s (centred, "
                                   f"smoothing {opts.smoothing:g} s) vs iter_windows(hop={opts.hop:g}) + "
                                   "encode_windows"))
    print("\n".join(out))


if __name__ == "__main__":
    main()
