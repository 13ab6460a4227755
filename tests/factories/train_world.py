"""A tiny training world shared by the trainer tests: SD folders, a BEATs checkpoint and a data folder.

Built once per test session (module-level cache) because writing models and importing diffusers is
most of the trainer tests' cost on a small CPU.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from testkit.beats import write_tiny_official_beats
from testkit.sd import write_tiny_sd

from .media import write_picture, write_wav

_WORLDS: dict[str, dict] = {}

N_CLIPS = 6
LABELS = {"s0": "dog", "s1": "cat", "s2": "dog"}


def write_pairs(folder: Path, n: int = N_CLIPS, broken: bool = True) -> Path:
    for i in range(n):
        # mixed rates and channel counts on purpose: decoding must handle any
        write_wav(folder / f"s{i}.wav", seconds=1.25, rate=(16000, 22050, 8000)[i % 3], freq=150 + 90 * i, channels=1 + i % 2)
        write_picture(folder / f"s{i}.png", color=(40 * i, 120, 220 - 35 * i))
    (folder / "labels.csv").write_text("id,label\n" + "".join(f"{k},{v}\n" for k, v in LABELS.items()))
    if broken:
        (folder / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage, not audio")
        write_picture(folder / "broken.png")
    return folder


def get_world(root: Path, variants: tuple[str, ...] = ("sd1",)) -> dict:
    key = str(root)
    world = _WORLDS.setdefault(key, {"root": root})
    if "beats" not in world:
        world["beats"] = write_tiny_official_beats(root / "beats.pt", layers=12, dim=32, heads=4)
        world["data"] = write_pairs(root / "pairs")
    for v in variants:
        if v not in world:
            world[v] = write_tiny_sd(root / f"sd_{v}", v)
    return world


def with_flow_families(world: dict) -> dict:
    """`world` with a tiny diffusers folder of every flow family (`world[family]`), written once."""
    from testkit.flow import FAMILIES, write_tiny_flow

    for family in FAMILIES:
        if family not in world:
            world[family] = write_tiny_flow(world["root"] / f"flow_{family}", family)
    return world


def tiny_config(world: dict, out: Path, variant: str = "sd1", **overrides):
    from train.config import TrainConfig

    settings = dict(
        data=str(world["data"]),
        base_model=str(world[variant]),
        beats=str(world["beats"]),
        output_dir=str(out),
        cache_dir=str(world["root"] / f"cache_{variant}"),
        window_seconds=1.0,
        infer_window_seconds=1.0,
        frame_size="32x24",
        batch_size=2,
        grad_accum=1,
        max_steps=4,
        checkpoint_every=2,
        learning_rate=1e-4,
        embedder_hidden_dim=48,
        cache_windows=2,
        progress=False,
        log_every=1,
        tensorboard=False,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


REPO = Path(__file__).resolve().parents[2]


def cli_args(cfg) -> list[str]:
    """`python -m train` with every setting of `cfg` spelled as its flag."""
    args = [sys.executable, "-m", "train"]
    for key, value in cfg.to_dict().items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif value is None or value == []:
            continue
        elif isinstance(value, list):
            args += [flag, ",".join(map(str, value))] if key == "layers" else [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return args


def sigkill_after_first_checkpoint(cfg, timeout_s: float = 120.0) -> int:
    """Run the trainer's command line for `cfg` in a child, SIGKILL it once a checkpoint exists; returns the
    step of the newest checkpoint left behind."""
    from train.checkpoint import latest_checkpoint

    checkpoints = Path(cfg.output_dir) / "checkpoints"
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cli_args(cfg), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout_s
    try:
        while latest_checkpoint(checkpoints) is None:
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.time() < deadline, f"no checkpoint within {timeout_s:.0f} s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return int(latest_checkpoint(checkpoints).name.split("-")[1])


def fixed_batch_losses(trainer, embedder, batch, steps: int, lr: float = 1e-2) -> list[float]:
    """The diffusion loss ("mse") over `steps` AdamW steps of the Embedder on one batch, with the same noise and
    timesteps every time (micro_step 0): deterministic steps, so a steady fall is the optimisation itself."""
    import torch

    opt = torch.optim.AdamW(embedder.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss, parts = trainer.loss(batch, micro_step=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["mse"])
    return losses
