"""AudioToken Encode stays in bounded memory for every window it accepts (BEATs attention is quadratic)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import pack_module  # noqa: E402

HERE = Path(__file__).resolve().parent
# Peak RSS of a whole process (host imported, full-size BEATs loaded) encoding at the largest window. A small
# CPU host has about 3 GB to spare; measured about 1.5 GB (docs/benchmarks.md). A 60 s window adds over 1 GB
# more, so raising the cap without bounding attention memory fails here.
PEAK_RSS_BOUND_MB = 2048


def window_input():
    return pack_module("encode").AudioTokenEncode.INPUT_TYPES()["required"]["window_seconds"][1]


def test_window_cap_holds_when_the_value_comes_through_the_api(monkeypatch):
    encode = pack_module("encode")  # imports the host first
    import execution
    import nodes

    monkeypatch.setitem(nodes.NODE_CLASS_MAPPINGS, "AudioTokenEncode", encode.AudioTokenEncode)
    assert window_input()["max"] == encode.MAX_WINDOW_S == 30.0

    def window_errors(seconds):
        prompt = {"1": {"class_type": "AudioTokenEncode",
                        "inputs": {"mode": "first", "start_seconds": 0.0, "window_seconds": seconds}}}
        _, errors, _ = asyncio.run(execution.validate_inputs("p", prompt, "1", {}))
        return [e["type"] for e in errors if e.get("extra_info", {}).get("input_name") == "window_seconds"]

    assert window_errors(600.0) == ["value_bigger_than_max"]
    assert window_errors(30.5) == ["value_bigger_than_max"]
    assert window_errors(30.0) == []


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from testkit.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_official_embedder

    runtime = pack_module("runtime")
    folder = tmp_path_factory.mktemp("memory_model")
    with torch.random.fork_rng(devices=[]):
        beats = write_tiny_official_beats(folder / "beats.pt", layers=12, dim=32, heads=4)
        embedder = write_tiny_official_embedder(folder / "embedder.bin", in_dim=3 * 32, out_dim=768)
    return runtime.get_model(str(embedder), str(beats), "fp32")


@pytest.mark.parametrize("mode", ["first", "mean", "windows"])
def test_split_passes_give_what_one_call_gives(tiny_model, mode, monkeypatch):
    """Three sounds at a 20 s window run as passes of two rows; rows come back sound-major as one call's."""
    node = pack_module("encode").AudioTokenEncode
    g = torch.Generator().manual_seed(0)
    sound = {"waveform": torch.randn(3, 1, 16000 * 45, generator=g) * 0.1, "sample_rate": 16000}
    beats, rows = tiny_model.tokenizer.beats, []
    real = beats.extract_layers
    monkeypatch.setattr(beats, "extract_layers", lambda wave, *a, **kw: rows.append(wave.shape[0]) or real(wave, *a, **kw))
    tokens, count = node.execute(tiny_model, sound, mode=mode, start_seconds=0.0, window_seconds=20.0)
    assert max(rows) <= 2
    whole = tiny_model.encode(sound["waveform"], 16000, duration_s=20.0, mode=mode, batch_windows=100).tokens
    assert count == whole["l"].shape[0]
    torch.testing.assert_close(tokens.tokens["l"], whole["l"], rtol=1e-4, atol=1e-5)


MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    sys.path[:0] = [sys.argv[1], sys.argv[2]]
    import torch
    torch.set_num_threads(2)
    from inprocess import pack_module
    from testkit.beats import full_size_audio

    encode, runtime = pack_module("encode"), pack_module("runtime")
    import comfy.model_management as mm

    beats, embedder = full_size_audio()
    model = runtime.AudioTokenModel(beats, embedder, "BEATs (random, full size)", "embedder (random)",
                                    mm.text_encoder_device(), mm.text_encoder_offload_device())
    largest = encode.AudioTokenEncode.INPUT_TYPES()["required"]["window_seconds"][1]["max"]
    # execute() itself does not check the window against the schema (the host does), so larger ones measure too
    window = float(sys.argv[3]) if sys.argv[3] != "max" else largest
    sounds = int(sys.argv[4])
    wave = torch.randn(sounds, 1, int(window * 16000), generator=torch.Generator().manual_seed(0)) * 0.1
    def status_mb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith(field + ":"))

    # Building the random model can set the process high-water mark by itself; on Linux, reset it so the
    # encode's own peak is seen too (ru_maxrss, the whole run's peak, cannot be reset).
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        loaded = status_mb("VmRSS")
    except OSError:
        status_mb = None
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    start = time.perf_counter()
    tokens, count = encode.AudioTokenEncode.execute(model, {"waveform": wave, "sample_rate": 16000}, mode="first",
                                                    start_seconds=0.0, window_seconds=window)
    seconds = time.perf_counter() - start
    assert count == sounds and torch.isfinite(tokens.tokens["l"]).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    encode_peak = status_mb("VmHWM") if status_mb else peak
    print(json.dumps({"window_s": window, "sounds": sounds, "loaded_rss_mb": loaded, "encode_peak_rss_mb": encode_peak,
                      "peak_rss_mb": peak, "seconds": round(seconds, 1)}))
""")


def measure_peak(window: str = "max", sounds: int = 2) -> dict:
    """Full-size BEATs in a fresh process, so ru_maxrss is this encode's peak and nothing else's."""
    env = {**os.environ, "COMFYUI_PATH": COMFYUI_PATH}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(HERE), str(HERE.parent), window, str(sounds)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_at_the_largest_window():
    figures = measure_peak()  # two sounds: two rows of the largest window, which must not share a pass
    print("peak memory at the largest window:", figures)
    assert figures["window_s"] == 30.0
    assert figures["peak_rss_mb"] < PEAK_RSS_BOUND_MB, figures
    assert figures["encode_peak_rss_mb"] < PEAK_RSS_BOUND_MB, figures


if __name__ == "__main__":
    # docs/benchmarks.md: python tests/host/test_encode_memory.py [WINDOW_S|max] [SOUNDS]
    print(json.dumps(measure_peak(*sys.argv[1:2], *map(int, sys.argv[2:3]))))
