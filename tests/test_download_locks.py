"""Several processes on one models folder (a ComfyUI per GPU, or ComfyUI beside train.generate): one downloads
each official file, the others wait and use it, and a killed downloader's lock is taken over. Real processes
against a local mirror on 127.0.0.1 whose line the test holds open (`Faults.pause_after`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from audiotoken_core import download, download_lock, sources
from factories.mirror import HF_COMMIT, Mirror

REPO = Path(__file__).resolve().parents[1]
BEATS = sources.find("BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt")  # no pin: checked by the stated SHA-256
SD = sources.find("stable-diffusion-v1-5")
SD_FILES = {"model_index.json": b'{"_class_name": "StableDiffusionPipeline"}', "unet/config.json": b"{}",
            "unet/diffusion_pytorch_model.safetensors": hashlib.shake_256(b"unet").digest(50_000)}
BIG = "unet/diffusion_pytorch_model.safetensors"
WAITING = "waiting for another process downloading {} into {}"
DATA = hashlib.shake_256(b"beats stand-in").digest(3 * download.CHUNK + 12345)


@pytest.fixture
def mirror():
    with Mirror() as m:
        yield m
        for _, go in m.faults.pause_after.values():
            go.set()
        while Child.started:  # a failed test leaves no process behind
            Child.started.pop().stop()


class Child:
    """One fetching process; its log is a file, so a chatty child never blocks on a full pipe."""

    started: list[Child] = []

    def __init__(self, mirror: Mirror, name: str, folder: Path, log: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "AUDIOTOKEN_"))}
        env.update({sources.MIRROR_ENV: mirror.url, "HF_ENDPOINT": mirror.url, "HF_HUB_OFFLINE": "0",
                    "HF_HOME": str(log.parent / "hf_home"), "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"})
        self.log = log
        self._err = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "factories.fetch_child", name, str(folder)], env=env,
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=self._err, text=True)
        Child.started.append(self)

    def text(self) -> str:
        return self.log.read_text()

    def finish(self) -> str:
        out, _ = self.proc.communicate(timeout=60)
        self._err.close()
        assert self.proc.returncode == 0, self.text()
        return out.strip()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL on POSIX: no finally, no atexit, the lock is dropped by the OS alone
        self.stop()

    def stop(self) -> None:
        if self._err.closed:  # finished or killed already
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()
        self._err.close()


def until(condition, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def gets(mirror: Mirror, path: str) -> list[str | None]:
    return [rng for method, p, rng in mirror.requests if method == "GET" and p == path]


def size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else -1


@pytest.mark.parametrize("processes", [2, 3])
def test_one_process_downloads_the_others_wait_and_use_it(mirror, tmp_path, processes):
    path = mirror.add(BEATS.url, DATA)
    go = threading.Event()
    mirror.faults.pause_after[path] = (download.CHUNK, go)
    folder = tmp_path / "audio_encoders"
    children = [Child(mirror, BEATS.name, folder, tmp_path / f"child{i}.log") for i in range(processes)]
    waiting = WAITING.format(BEATS.name, folder)
    until(lambda: len(gets(mirror, path)) == 1 and sum(waiting in c.text() for c in children) == processes - 1,
          "one download and the other processes waiting")
    go.set()
    assert [c.finish() for c in children] == [str(folder / BEATS.name)] * processes
    assert (folder / BEATS.name).read_bytes() == DATA
    assert gets(mirror, path) == [None] and mirror.sent[path] == len(DATA)  # served once
    waiters = [c.text() for c in children if waiting in c.text()]
    assert all("downloaded and verified by the other process" in t for t in waiters)
    assert sorted(p.name for p in folder.iterdir()) == [BEATS.name]  # no lock file, no part file left


def test_a_killed_downloaders_lock_is_taken_over_and_its_part_resumed(mirror, tmp_path):
    path = mirror.add(BEATS.url, DATA)
    go = threading.Event()
    mirror.faults.pause_after[path] = (2 * download.CHUNK, go)
    folder = tmp_path / "audio_encoders"
    part = folder / (BEATS.name + download.PART_SUFFIX)
    holder = Child(mirror, BEATS.name, folder, tmp_path / "holder.log")
    until(lambda: size_of(part) == 2 * download.CHUNK, "the holder's part file")
    waiter = Child(mirror, BEATS.name, folder, tmp_path / "waiter.log")
    until(lambda: WAITING.format(BEATS.name, folder) in waiter.text(), "the second process waiting")
    holder.kill()
    assert waiter.finish() == str(folder / BEATS.name)
    assert (folder / BEATS.name).read_bytes() == DATA
    assert gets(mirror, path) == [None, f"bytes={2 * download.CHUNK}-"]
    assert mirror.sent[path] == len(DATA)  # the killed one's 2 MiB and the rest: nothing twice
    assert "left " + BEATS.name + " unfinished" in waiter.text() and "resuming" in waiter.text()
    assert sorted(p.name for p in folder.iterdir()) == [BEATS.name]


def test_a_lock_file_left_by_a_killed_process_blocks_nothing(mirror, tmp_path):
    path = mirror.add(BEATS.url, DATA)
    folder = tmp_path / "audio_encoders"
    folder.mkdir()
    download_lock.lock_path(folder / BEATS.name).write_text("")  # what SIGKILL leaves: the file, but no lock
    child = Child(mirror, BEATS.name, folder, tmp_path / "child.log")
    assert child.finish() == str(folder / BEATS.name)
    assert "waiting" not in child.text() and gets(mirror, path) == [None]
    assert sorted(p.name for p in folder.iterdir()) == [BEATS.name]


def test_a_waiter_shows_the_other_part_file_and_may_be_cancelled(mirror, monkeypatch, tmp_path):
    """The node's progress hook is also where ComfyUI's Cancel lands: waiting must not make a prompt uncancellable."""
    monkeypatch.setenv(sources.MIRROR_ENV, mirror.url)
    monkeypatch.delenv(sources.PINS_ENV, raising=False)
    part = tmp_path / (BEATS.name + download.PART_SUFFIX)
    part.write_bytes(b"x" * 1000)
    seen = []

    class Cancelled(Exception):
        pass

    def progress(done, total):
        seen.append((done, total))
        raise Cancelled

    # the holder: its own descriptor, so it excludes this process's fetch as it would another process's
    with download_lock.download_lock(tmp_path / BEATS.name, BEATS.name):
        with pytest.raises(Cancelled):
            download.fetch(BEATS, tmp_path, progress=progress)
        assert download_lock.lock_path(tmp_path / BEATS.name).is_file()
    assert seen == [(1000, None)] and mirror.requests == [] and part.read_bytes() == b"x" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [part.name]


def resolve_path(rel: str) -> str:
    return f"/{SD.hf_repo}/resolve/{HF_COMMIT}/{rel}"


def test_model_folder_is_fetched_once_for_two_processes(mirror, tmp_path):
    mirror.add_repo(SD.hf_repo, SD_FILES)
    go = threading.Event()
    mirror.faults.pause_after[resolve_path(BIG)] = (0, go)
    models = tmp_path / "models"
    children = [Child(mirror, SD.name, models, tmp_path / f"child{i}.log") for i in range(2)]
    waiting = WAITING.format(SD.name, models)
    until(lambda: gets(mirror, resolve_path(BIG)) and sum(waiting in c.text() for c in children) == 1,
          "one folder download and the other process waiting")
    go.set()
    assert [c.finish() for c in children] == [str(models / SD.name)] * 2
    for rel, data in SD_FILES.items():
        assert (models / SD.name / rel).read_bytes() == data
        assert len(gets(mirror, resolve_path(rel))) == 1, rel
    assert (models / SD.name / download.VERIFIED_MARK).is_file()
    assert [p.name for p in models.iterdir()] == [SD.name]


def test_model_folder_of_a_killed_process_is_finished_by_the_next(mirror, tmp_path):
    mirror.add_repo(SD.hf_repo, SD_FILES)
    go = threading.Event()
    mirror.faults.pause_after[resolve_path(BIG)] = (1000, go)
    models = tmp_path / "models"
    dest = models / SD.name
    holder = Child(mirror, SD.name, models, tmp_path / "holder.log")
    small = [rel for rel in SD_FILES if rel != BIG]
    # huggingface_hub's record of each finished file, which spares it a second download
    records = [dest / ".cache" / "huggingface" / "download" / f"{rel}.metadata" for rel in small]
    until(lambda: mirror.sent.get(resolve_path(BIG)) == 1000 and all(r.is_file() for r in records),
          "the small files done and the big one under way")
    waiter = Child(mirror, SD.name, models, tmp_path / "waiter.log")
    until(lambda: WAITING.format(SD.name, models) in waiter.text(), "the second process waiting")
    holder.kill()
    assert waiter.finish() == str(dest)
    for rel, data in SD_FILES.items():
        assert (dest / rel).read_bytes() == data
    assert all(len(gets(mirror, resolve_path(rel))) == 1 for rel in small)  # finished files are not fetched again
    # huggingface_hub (2.x) writes each file to a temporary name of its own process: the cut one starts over
    assert len(gets(mirror, resolve_path(BIG))) == 2
    assert (dest / download.VERIFIED_MARK).is_file()
    assert [p.name for p in models.iterdir()] == [SD.name]
