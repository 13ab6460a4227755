"""Time audio -> CONDITIONING through the pack's nodes next to one SD1.5 sampling step.

Real sizes, random weights: BEATs iter3+ (90M: 12 layers, 768 wide, 3072 FFN, 12 heads), the official
Embedder (2304 -> 768), full CLIP-L and the full SD1.5 UNet, each in the dtype ComfyUI picks for the device
(on CPU: BEATs fp32, CLIP fp16 as the host's text_encoder_dtype, UNet fp32).

    COMFYUI_PATH=/path/to/ComfyUI python -m benchmarks.bench_encode [--device cpu|cuda|all] [--threads 1 2]

Prints where it ran (commit, date, machine, the command: `benchmarks/provenance.py`) and a Markdown table with
wall and process CPU seconds for each torch thread count side by side; the counts alternate run by run, so
load on a shared machine hits each alike. Needs a ComfyUI checkout (0.3.64 tested) for the CLIP, the UNet and
the nodes.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from benchmarks import provenance
from testkit.beats import full_size_audio
from testkit.host import PACK, comfy_in_process, pack_module

SD15_UNET = {
    "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320, "num_res_blocks": [2, 2, 2, 2],
    "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "transformer_depth_output": [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1], "transformer_depth_middle": 1, "context_dim": 768, "num_heads": 8, "num_head_channels": -1,
    "use_linear_in_transformer": False, "use_spatial_transformer": True, "legacy": False, "adm_in_channels": None,
    "use_temporal_attention": False,
}


def setup_comfy(device: str):
    root = os.environ.get("COMFYUI_PATH")
    if not root:
        sys.exit("set COMFYUI_PATH to a ComfyUI checkout")
    comfy_in_process(root, cpu=device == "cpu")
    pack_module("runtime")


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)  # seconds
    cpu: list[float] = field(default_factory=list)   # process CPU seconds, all threads together


@contextmanager
def torch_threads(n: int | None):
    before = torch.get_num_threads()
    torch.set_num_threads(before if n is None else n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def timed(fn, device, repeats: int, threads=(None,)) -> dict:
    """{thread count: Runs} of `fn`; None = torch's current count. The counts alternate in each round."""
    for n in threads:
        with torch_threads(n):
            fn()  # warm-up: first-call allocations, kernel selection
            sync(device)
    runs = {n: Runs() for n in threads}
    for _ in range(repeats):
        for n in threads:
            with torch_threads(n):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                sync(device)
                runs[n].wall.append(time.perf_counter() - wall)
                runs[n].cpu.append(time.process_time() - cpu)
    return runs


def fill_random(module: torch.nn.Module, seed: int) -> None:
    """comfy.ops layers are created uninitialised: give them finite, roughly unit-scale weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 0:
                continue  # logit_scale: keep the module's value
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1:
                p.fill_(1.0)
            else:
                fan_in = p[0].numel()
                p.copy_((torch.randn(p.shape, generator=g) * (0.5 / fan_in ** 0.5)).to(p.dtype))


def audio_model(device, precision: str = "auto"):
    import importlib

    import comfy.model_management as mm

    runtime = importlib.import_module(f"{PACK}.nodes.runtime")
    load = mm.text_encoder_device()
    dtype = runtime.pick_dtype(precision, load)
    beats, embedder = full_size_audio(seed=0, dtype=dtype)  # same random weights for every precision
    model = runtime.AudioTokenModel(beats, embedder, "BEATs (random, 90M)", "embedder (random, 2304->768)",
                                    load, mm.text_encoder_offload_device())
    return model, dtype


def clip_l():
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models_base

    target = comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel)
    clip = comfy.sd.CLIP(target=target, embedding_directory=[])
    fill_random(clip.cond_stage_model, seed=1)
    return clip


def unet(device):
    import comfy.model_management as mm
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    dtype = mm.unet_dtype(device=mm.get_torch_device())
    with torch.device("meta"):
        model = UNetModel(**copy.deepcopy(SD15_UNET), dtype=dtype, operations=comfy.ops.disable_weight_init)
    model = model.to_empty(device=mm.get_torch_device())
    fill_random(model, seed=2)
    return model.eval(), dtype


def bench(device: str, repeats: int, unet_size: int, skip_unet: bool, threads=(None,)) -> list[tuple]:
    """Rows (stage, device, dtype, {thread count: Runs})."""
    import importlib

    import comfy.model_management as mm

    encode = importlib.import_module(f"{PACK}.nodes.encode").AudioTokenEncode
    text_encode = importlib.import_module(f"{PACK}.nodes.text_encode").AudioTokenTextEncode
    model, beats_dtype = audio_model(device)
    clip = clip_l()
    g = torch.Generator().manual_seed(3)
    sound = {"waveform": torch.randn(1, 2, 441000, generator=g) * 0.1, "sample_rate": 44100}  # 10 s, 44.1 kHz stereo
    holder = {}

    def tokens():
        holder["tokens"] = encode.execute(model, sound, "first", 0.0, 10.0)[0]

    def conditioning():
        text_encode.execute(clip, holder["tokens"], "a photo of <audio>")

    def both():
        tokens()
        conditioning()

    rows = []
    dev_name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    rows.append(("audio -> tokens (BEATs + Embedder, 10 s clip)", dev_name, str(beats_dtype).replace("torch.", ""),
                 timed(tokens, device, repeats, threads)))
    clip_dtype = str(mm.text_encoder_dtype(mm.text_encoder_device())).replace("torch.", "")
    rows.append(("tokens -> CONDITIONING (CLIP-L, splice)", dev_name, clip_dtype,
                 timed(conditioning, device, repeats, threads)))
    rows.append(("audio -> CONDITIONING (total)", dev_name, "", timed(both, device, repeats, threads)))
    if device != "cpu" and beats_dtype != torch.float32:
        # Is half precision accurate enough? Compare with fp32 on the same weights and sound.
        reference, _ = audio_model(device, "fp32")
        ref = encode.execute(reference, sound, "first", 0.0, 10.0)[0].tokens["l"].flatten()
        half = holder["tokens"].tokens["l"].flatten()
        cos = torch.nn.functional.cosine_similarity(ref, half, dim=0).item()
        rel = ((ref - half).norm() / ref.norm()).item()
        print(f"{beats_dtype} vs fp32 tokens: cosine {cos:.6f}, relative L2 error {rel:.2e}")
        del reference
    if not skip_unet:
        net, dtype = unet(device)
        del model, clip
        dev = mm.get_torch_device()
        size = unet_size // 8
        x = torch.randn(2, 4, size, size, device=dev, dtype=dtype)
        t = torch.tensor([500.0, 500.0], device=dev)
        ctx = torch.randn(2, 77, 768, device=dev, dtype=dtype)

        def step():
            with torch.inference_mode():
                net(x, t, context=ctx)

        rows.append((f"SD1.5 UNet, one sampling step ({unet_size}x{unet_size}, batch 2 = cfg)", dev_name,
                     str(dtype).replace("torch.", ""), timed(step, device, max(1, repeats // 3), threads)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--unet-size", type=int, default=512, help="image size for the UNet step (latent = size / 8)")
    parser.add_argument("--skip-unet", action="store_true")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                        help="torch thread counts, measured side by side (default: torch's own count)")
    opts = parser.parse_args()
    devices = ["cpu", "cuda"] if opts.device == "all" else [opts.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if opts.device == "cuda":
            sys.exit("no CUDA device")
        devices.remove("cuda")
    if len(devices) > 1:
        # The host's device choice is global (args.cpu), so each device runs in its own process.
        import subprocess

        for d in devices:
            subprocess.run([sys.executable, __file__, "--device", d, "--repeats", str(opts.repeats),
                            "--unet-size", str(opts.unet_size), "--threads", *map(str, opts.threads)]
                           + (["--skip-unet"] if opts.skip_unet else []), check=True)
        return
    device = devices[0]
    setup_comfy(device)
    with torch.inference_mode():
        rows = bench(device, opts.repeats, opts.unet_size, opts.skip_unet, tuple(opts.threads))
    print(f"\n{provenance.line(opts.threads)}\n")
    unet = "" if opts.skip_unet else f" (the UNet step {max(1, opts.repeats // 3)})"
    print(f"runs per thread count: {opts.repeats}{unet}, after one warm-up; median (min-max); "
          "CPU = process CPU seconds, all threads together\n")
    columns = [f"{n} thread{'s' if n != 1 else ''}: {clock}" for n in opts.threads for clock in ("wall s", "CPU s")]
    print("| stage | device | dtype | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---:|" * len(columns))
    for stage, dev, dtype, runs in rows:
        cells = [spread(getattr(runs[n], clock)) for n in opts.threads for clock in ("wall", "cpu")]
        print(f"| {stage} | {dev} | {dtype} | " + " | ".join(cells) + " |")


def spread(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.3f} (1 run)"
    return f"{statistics.median(times):.3f} ({min(times):.3f}-{max(times):.3f})"


if __name__ == "__main__":
    main()
