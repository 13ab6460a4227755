"""From nothing to a picture: `bash scripts/generate.sh --audio dog.wav --download` on an empty cache, with a
local mirror serving random stand-ins for the official files and a fake Hugging Face endpoint serving a tiny
SD1.5-layout diffusers folder (the routes snapshot_download uses). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from audiotoken_core import sources
from testkit.beats import write_tiny_official_beats
from factories.embedder import write_tiny_embedder
from factories.media import write_wav
from factories.mirror import Mirror, git_blob
from testkit.sd import SD1_WIDTH, write_tiny_sd

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SD = sources.find("stable-diffusion-v1-5")
EMBEDDER = sources.find("embedder_learned_embeds.bin")
BEATS = sources.find("BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")
BEATS_DIM = 32


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh_machine")
    stand = root / "stand_ins"
    sd_files = folder_files(write_tiny_sd(stand / "sd", "sd1"))
    sd_files["safety_checker/model.safetensors"] = b"not asked for: outside the allow patterns"
    beats = write_tiny_official_beats(stand / BEATS.name, layers=12, dim=BEATS_DIM, heads=4).read_bytes()
    # our format under the official name (read by content): an official-layout file would need a 768-wide CLIP
    embedder = write_tiny_embedder(stand / EMBEDDER.name, in_dim=3 * BEATS_DIM, widths={"l": SD1_WIDTH}).read_bytes()
    # The stand-ins are not the official bytes: pin theirs. BEATs has no pin, so the mirror's stated SHA-256 is used.
    pins = root / "pins.json"
    pins.write_text(json.dumps({EMBEDDER.name: {"git_blob": git_blob(embedder)}}))
    mirror = Mirror().start()
    mirror.add_repo(SD.hf_repo, sd_files)
    mirror.add(EMBEDDER.url, embedder)
    beats_path = mirror.add(BEATS.url, beats)
    mirror.faults.cut_after[beats_path] = len(beats) // 2  # the line drops once, halfway
    write_wav(root / "work" / "dog.wav", seconds=2.0, rate=22050, freq=330.0)
    yield {"root": root, "mirror": mirror, "pins": pins, "beats": beats, "embedder": embedder, "beats_path": beats_path}
    mirror.stop()


def run_generate(world, *args, cache: Path):
    env = dict(os.environ)
    for key in [k for k in env if k.startswith(("HF_", "HUGGINGFACE_", "AUDIOTOKEN_"))] + ["PYTHONPATH"]:
        env.pop(key, None)
    env.update({
        "AUDIOTOKEN_DOWNLOAD_MIRROR": world["mirror"].url, "AUDIOTOKEN_DOWNLOAD_PINS": str(world["pins"]),
        "HF_ENDPOINT": world["mirror"].url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(world["root"] / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1", "AUDIOTOKEN_CACHE": str(cache), "AUDIOTOKEN_VENV": str(REPO / ".venv"),
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return subprocess.run(["bash", str(REPO / "scripts" / "generate.sh"), *args], cwd=world["root"] / "work",
                          env=env, capture_output=True, text=True, timeout=900)


def test_fresh_machine_downloads_verifies_and_draws(world):
    cache = world["root"] / "cache"
    proc = run_generate(world, "--audio", "dog.wav", "--download", "--steps", "2", "--height", "32", "--width", "32",
                        "--out", "out", cache=cache)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    png = world["root"] / "work" / "out" / "dog_seed0.png"  # relative to where the command ran
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # announced, shown, resumed and verified, each file
    assert log.count("downloading ") == 3, log[-6000:]
    assert "resuming BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt at" in log
    assert "verified BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt" in log and "SHA-256 stated by the server" in log
    assert "verified embedder_learned_embeds.bin" in log and "pinned git blob id" in log
    assert "verified stable-diffusion-v1-5" in log and "match the sizes and hashes the Hub lists" in log
    assert "B/s" in log or "%|" in log  # tqdm bars
    assert (cache / BEATS.name).read_bytes() == world["beats"]
    assert (cache / EMBEDDER.name).read_bytes() == world["embedder"]
    assert (cache / SD.name / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not (cache / SD.name / "safety_checker").exists()
    assert not list(cache.glob("*.part"))
    ranged = [r for r in world["mirror"].requests if r[1] == world["beats_path"] and r[2]]
    assert ranged == [("GET", world["beats_path"], f"bytes={len(world['beats']) // 2}-")]

    # A second run finds everything in the cache and asks the mirror for nothing.
    before = len(world["mirror"].requests)
    again = run_generate(world, "--audio", "dog.wav", "--steps", "1", "--height", "32", "--width", "32",
                         "--out", "out2", "--no-download", cache=cache)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert len(world["mirror"].requests) == before


def test_no_download_names_what_to_put_where(world, tmp_path):
    proc = run_generate(world, "--audio", "dog.wav", "--no-download", "--lora", "official", cache=tmp_path / "empty")
    assert proc.returncode == 2
    err = proc.stderr
    for name in (EMBEDDER.name, BEATS.name, SD.name, "lora_layers_learned_embeds.bin"):
        assert f"put {name}" in err and str(tmp_path / "empty" / name) in err, err
    assert EMBEDDER.url in err  # the official address, pinned to a commit
    assert not (tmp_path / "empty").exists()


def test_offline_run_names_every_missing_file_at_once(world, tmp_path):
    """The mirror knows no file (as a network that refuses): every download is tried and each failure listed,
    with the mirror setting, instead of stopping at the first."""
    with Mirror() as empty:
        proc = run_generate({**world, "mirror": empty}, "--audio", "dog.wav", "--download", cache=tmp_path / "empty")
    assert proc.returncode == 2, proc.stderr[-4000:]
    listed = proc.stderr.split("cannot generate; missing files:", 1)[1]
    for name in (EMBEDDER.name, BEATS.name, SD.name):
        assert f"\n  - {name}: " in listed and str(tmp_path / "empty" / name) in listed, listed
    assert EMBEDDER.url in listed and sources.MIRROR_ENV in listed.splitlines()[-1], listed
    assert "cannot download" not in proc.stderr
