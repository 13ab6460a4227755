"""What naming the sounds costs AudioToken Encode: a BEATs with its AudioSet head next to the same BEATs without.

Encode asks the one core entry (`AudioTokenizer.encode(..., heard=True)`) for the tokens and the AudioSet
probabilities of the same BEATs pass, so the head should cost one small matrix product per row, not a second
BEATs run (issue 19 measured twice the BEATs rows before). Full-size random BEATs iter3+ (90 M parameters)
with the 527-class head and the official Embedder shape (2304 -> 768), a 10 s clip, mode first, one thread;
with and without the head alternate, so both see the same machine load. Times are process CPU seconds.

    python -m benchmarks.bench_encode_heard [--repeats 7]                  # the core entry only
    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.bench_encode_heard   # and the Encode node itself

Prints a Markdown table; exits 1 when a median ratio is above --limit (1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager

import torch

from audiotoken_core.beats import BEATs
from audiotoken_core.pipeline import AudioTokenizer
from benchmarks import provenance
from testkit.beats import full_size_audio

RATE = 16_000


@contextmanager
def headless(beats: BEATs):
    """The same BEATs without its AudioSet head (as a pre-trained checkpoint loads), for the time inside."""
    head = beats.predictor
    beats.predictor = None
    try:
        yield
    finally:
        beats.predictor = head


def node_runner(beats, embedder, wave):
    """AudioToken Encode's execute in-process in a real ComfyUI, or None without COMFYUI_PATH."""
    if not os.environ.get("COMFYUI_PATH"):
        return None
    from testkit.host import comfy_in_process, pack_module

    comfy_in_process(os.environ["COMFYUI_PATH"])
    import comfy.model_management as mm

    model = pack_module("runtime").AudioTokenModel(beats, embedder, "BEATs (random, full size)", "embedder (random)",
                                                   mm.text_encoder_device(), mm.text_encoder_offload_device())
    node = pack_module("encode").AudioTokenEncode
    sound = {"waveform": wave[None], "sample_rate": RATE}

    def run(with_head: bool):
        tokens = node.execute(model, sound, "first", 0.0, 10.0)[0]
        assert (tokens.heard is not None) == with_head
    return run


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def side_by_side(run, beats, repeats: int) -> tuple[list[float], list[float]]:
    """CPU seconds of `run(with_head)`, without and with the head alternating, after one warm-up of each."""
    without, with_ = [], []
    for i in range(repeats + 1):
        with headless(beats):
            t0 = cpu_seconds(lambda: run(False))
        t1 = cpu_seconds(lambda: run(True))
        if i:  # the first pair warms up allocations and the label tables
            without.append(t0)
            with_.append(t1)
    return without, with_


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7, help="timed runs of each, after one warm-up")
    p.add_argument("--limit", type=float, default=1.05, help="largest allowed ratio of medians (with / without)")
    opts = p.parse_args(argv)
    torch.set_num_threads(1)
    beats, embedder = full_size_audio(with_head=True)
    wave = torch.randn(1, 10 * RATE, generator=torch.Generator().manual_seed(1)) * 0.1
    tokenizer = AudioTokenizer(beats, embedder)

    def core(with_head: bool):
        out = tokenizer.encode(wave, RATE, mode="first", heard=with_head)
        assert (out.heard is not None) == with_head

    runs = {"core: `AudioTokenizer.encode`": core}
    node = node_runner(beats, embedder, wave)
    if node is not None:
        runs["node: AudioToken Encode (`execute`)"] = node
    print(f"{provenance.line((1,))}\n")
    print(f"{opts.repeats} runs each after a warm-up, 10 s clip, mode first\n")
    print("| what | without head, CPU s (min-max) | with head, CPU s (min-max) | ratio of medians |")
    print("|---|---|---|---:|")
    worst = 0.0
    for name, run in runs.items():
        without, with_ = side_by_side(run, beats, opts.repeats)
        ratio = statistics.median(with_) / statistics.median(without)
        worst = max(worst, ratio)
        print(f"| {name} | {statistics.median(without):.3f} ({min(without):.3f}-{max(without):.3f}) | "
              f"{statistics.median(with_):.3f} ({min(with_):.3f}-{max(with_):.3f}) | {ratio:.3f} |")
    ok = worst <= opts.limit
    print(f"\nlargest ratio {worst:.3f}: {'within' if ok else 'ABOVE'} the {opts.limit:g}x limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
