"""Downloads of the official files against a local mirror on 127.0.0.1: resume, verification, atomic names,
clear errors, and the sources table itself."""

from __future__ import annotations

import hashlib
import json
import os
import socket

import pytest

from audiotoken_core import download, hashes, snapshot, sources
from factories.mirror import Mirror, git_blob
from factories.official import OFFICIAL

LORA = sources.find("lora_layers_learned_embeds.bin")
EMBEDDER = sources.find("embedder_learned_embeds.bin")
BEATS = sources.find("BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")


@pytest.fixture
def mirror(monkeypatch):
    with Mirror() as m:
        monkeypatch.setenv(sources.MIRROR_ENV, m.url)
        monkeypatch.delenv(sources.PINS_ENV, raising=False)
        yield m


def stand_in(n: int = 3 * download.CHUNK + 12345, seed: int = 0) -> bytes:
    return hashlib.shake_256(b"stand-in %d" % seed).digest(n)


def pin(monkeypatch, tmp_path, **entries) -> None:
    path = tmp_path / "pins.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv(sources.PINS_ENV, str(path))


def pin_sha(monkeypatch, tmp_path, source, data: bytes) -> None:
    pin(monkeypatch, tmp_path, **{source.name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}})


def test_every_row_says_where_what_and_under_which_licence():
    names = [s.name for s in sources.SOURCES]
    assert len(names) == len(set(names))
    for s in sources.SOURCES:
        assert s.licence and s.approx_bytes > 0 and s.folder and s.kind
        assert (s.url or "").startswith("https://") or s.hf_repo, s.name
        assert s.url is None or "/raw/main/" not in s.url  # the official repo's only branch is master
    assert EMBEDDER.git_blob == "5d1f5c101e5b5e1fdf5637a2e372b0d441b09639"
    assert {s.folder for s in sources.SOURCES} >= {"audiotoken", "audio_encoders", "loras"}


def test_find_by_name_and_folder():
    assert sources.find("/some/where/embedder_learned_embeds.bin") is EMBEDDER
    assert sources.find("embedder_learned_embeds.bin", "audiotoken") is EMBEDDER
    assert sources.find("embedder_learned_embeds.bin", "audio_encoders") is None  # an official file, other folder
    assert sources.find("my_embedder.safetensors") is None


def test_official_lora_row_matches_the_committed_file():
    path = OFFICIAL / LORA.name
    assert path.stat().st_size == LORA.size
    assert hashes.sha256_of(path) == LORA.sha256
    assert hashes.git_blob_id(path) == LORA.git_blob  # the id `git ls-tree` shows at commit 010d5b8


def test_mirror_keeps_path_and_query(monkeypatch):
    monkeypatch.setenv(sources.MIRROR_ENV, "http://127.0.0.1:8765")
    assert (sources.mirrored("https://huggingface.co/spaces/x/resolve/main/m.pt?download=true")
            == "http://127.0.0.1:8765/spaces/x/resolve/main/m.pt?download=true")
    monkeypatch.setenv(sources.MIRROR_ENV, "mirror.local:81")
    assert sources.mirrored("https://github.com/a/b/raw/master/f.bin") == "http://mirror.local:81/a/b/raw/master/f.bin"
    monkeypatch.delenv(sources.MIRROR_ENV)
    assert sources.mirrored("https://github.com/a") == "https://github.com/a"


def test_cut_transfer_resumes_with_a_range_request(mirror, monkeypatch, tmp_path):
    data = stand_in()
    path = mirror.add(LORA.url, data)
    pin_sha(monkeypatch, tmp_path, LORA, data)
    mirror.faults.cut_after[path] = len(data) // 2
    seen = []
    out = download.fetch(LORA, tmp_path / "loras", progress=lambda d, t: seen.append((d, t)), retry_wait_s=0)
    assert out.read_bytes() == data
    gets = [r for r in mirror.requests if r[1] == path]
    assert gets[0][2] is None and gets[1][2] == f"bytes={len(data) // 2}-"
    assert seen[-1] == (len(data), len(data)) and any(d == len(data) // 2 for d, _ in seen)
    assert sorted(p.name for p in (tmp_path / "loras").iterdir()) == [LORA.name]


def test_part_left_by_an_earlier_run_is_resumed(mirror, monkeypatch, tmp_path, caplog):
    data = stand_in(seed=1)
    path = mirror.add(BEATS.url, data)
    mirror.faults.cut_after[path] = download.CHUNK + 7
    folder = tmp_path / "audio_encoders"
    with pytest.raises(download.DownloadError, match="resumes from there"):
        download.fetch(BEATS, folder, retries=1)
    assert not (folder / BEATS.name).exists() and (folder / (BEATS.name + ".part")).stat().st_size == download.CHUNK + 7
    caplog.set_level("INFO", logger="audiotoken.download")
    out = download.fetch(BEATS, folder)  # no pin: checked against the SHA-256 the server states
    assert out.read_bytes() == data
    assert mirror.requests[-1][2] == f"bytes={download.CHUNK + 7}-"
    text = caplog.text
    assert "resuming" in text and "SHA-256 stated by the server" in text and "verified" in text


def test_wrong_bytes_are_rejected_and_nothing_is_left(mirror, monkeypatch, tmp_path):
    good, bad = stand_in(seed=2), stand_in(seed=3)
    mirror.add(LORA.url, bad)
    pin_sha(monkeypatch, tmp_path / "..", LORA, good)
    folder = tmp_path / "loras"
    with pytest.raises(download.DownloadError, match="not the expected file") as err:
        download.fetch(LORA, folder)
    assert "was deleted" in str(err.value) and str(folder / LORA.name) in str(err.value)
    assert list(folder.iterdir()) == []


def test_wrong_size_is_rejected(mirror, monkeypatch, tmp_path):
    data = stand_in(seed=4)
    mirror.add(LORA.url, data[:-1])
    pin_sha(monkeypatch, tmp_path, LORA, data)
    with pytest.raises(download.DownloadError, match="wrong size"):
        download.fetch(LORA, tmp_path / "loras")
    assert list((tmp_path / "loras").iterdir()) == []


def test_git_blob_id_verifies_the_official_embedder_row(mirror, monkeypatch, tmp_path):
    data = stand_in(seed=5)
    mirror.add(EMBEDDER.url, data)
    mirror.state_sha256 = False  # GitHub states no hash: the pinned blob id is all there is
    pin(monkeypatch, tmp_path, **{EMBEDDER.name: {"git_blob": git_blob(data)}})
    assert download.fetch(EMBEDDER, tmp_path / "audiotoken").read_bytes() == data
    pin(monkeypatch, tmp_path, **{EMBEDDER.name: {"git_blob": git_blob(data + b"x")}})
    with pytest.raises(download.DownloadError, match="pinned git blob id"):
        download.fetch(EMBEDDER, tmp_path / "other")


def test_no_hash_at_all_is_refused(mirror, tmp_path):
    mirror.add(BEATS.url, stand_in(seed=6))
    mirror.state_sha256 = False
    with pytest.raises(download.DownloadError, match="no hash to check it against"):
        download.fetch(BEATS, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_server_ignoring_range_restarts_cleanly(mirror, monkeypatch, tmp_path):
    data = stand_in(seed=7)
    path = mirror.add(LORA.url, data)
    pin_sha(monkeypatch, tmp_path, LORA, data)
    mirror.faults.cut_after[path] = 1000
    mirror.faults.ignore_range.add(path)
    assert download.fetch(LORA, tmp_path / "l", retry_wait_s=0).read_bytes() == data


def test_404_names_the_file_the_url_and_where_to_put_it(mirror, tmp_path):
    with pytest.raises(download.DownloadError) as err:
        download.fetch(EMBEDDER, tmp_path / "audiotoken")
    msg = str(err.value)
    assert "404" in msg and EMBEDDER.url in msg and str(tmp_path / "audiotoken" / EMBEDDER.name) in msg
    assert not (tmp_path / "audiotoken").exists() or list((tmp_path / "audiotoken").iterdir()) == []


def test_offline_names_what_to_put_where(monkeypatch, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv(sources.MIRROR_ENV, f"http://127.0.0.1:{port}")
    with pytest.raises(download.DownloadError, match="cannot reach 127.0.0.1") as err:
        download.fetch(BEATS, tmp_path)
    assert f"at {tmp_path / BEATS.name}" in str(err.value) and "huggingface.co/spaces/GuyYariv" in str(err.value)


def test_existing_file_is_used_as_it_is(mirror, tmp_path):
    (tmp_path / LORA.name).write_bytes(b"the user's own copy")
    assert download.fetch(LORA, tmp_path).read_bytes() == b"the user's own copy"
    assert mirror.requests == []


def test_pins_file_is_checked(monkeypatch, tmp_path):
    pin(monkeypatch, tmp_path, **{"unknown.bin": {"sha256": "0" * 64}})
    with pytest.raises(ValueError, match="not a file of the sources table"):
        sources.resolved(LORA)
    pin(monkeypatch, tmp_path, **{LORA.name: {"size": 3}})
    with pytest.raises(ValueError, match="sha256 or git_blob"):
        sources.resolved(LORA)


def test_progress_may_cancel_and_keeps_the_part(mirror, monkeypatch, tmp_path):
    data = stand_in(seed=8)
    mirror.add(LORA.url, data)
    pin_sha(monkeypatch, tmp_path, LORA, data)

    def cancel(done, total):
        if done > download.CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download.fetch(LORA, tmp_path / "l", progress=cancel)
    assert not (tmp_path / "l" / LORA.name).exists()
    assert os.path.getsize(tmp_path / "l" / (LORA.name + ".part")) > download.CHUNK
    assert download.fetch(LORA, tmp_path / "l").read_bytes() == data


SD = sources.find("stable-diffusion-v1-5")
SD_FILES = {"model_index.json": b'{"_class_name": "StableDiffusionPipeline"}', "unet/config.json": b"{}",
            "unet/diffusion_pytorch_model.safetensors": stand_in(5000, seed=9), "safety_checker/model.bin": b"no"}


def test_model_folder_is_checked_against_the_hub_listing(mirror, monkeypatch, tmp_path, caplog):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", mirror.url)
    mirror.add_repo(SD.hf_repo, SD_FILES)
    with caplog.at_level("INFO", logger="audiotoken.download"):
        folder = snapshot.fetch_snapshot(SD, tmp_path / "ok")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts) \
        == [download.VERIFIED_MARK, "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    assert "verified stable-diffusion-v1-5: 3 files" in caplog.text
    mirror.faults.tree_lies.add("unet/diffusion_pytorch_model.safetensors")
    with pytest.raises(download.DownloadError, match="does not match the size and hash the Hub lists"):
        snapshot.fetch_snapshot(SD, tmp_path / "bad")
    assert not (tmp_path / "bad" / SD.name / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert not (tmp_path / "bad" / SD.name / download.VERIFIED_MARK).exists()


def test_model_folder_offline_names_what_to_put_where(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(download.DownloadError, match="the Hugging Face download failed") as err:
        snapshot.fetch_snapshot(SD, tmp_path)
    assert f"put {SD.name}" in str(err.value) and str(tmp_path / SD.name) in str(err.value)
    assert SD.hf_repo in str(err.value)


def test_core_download_imports_nothing_beyond_the_standard_library_and_filelock():
    import subprocess
    import sys

    code = ("import sys; import audiotoken_core.download, audiotoken_core.sources; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'huggingface_hub', 'tqdm', 'requests', 'httpx', 'diffusers', 'comfy', 'folder_paths', 'transformers'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]"
