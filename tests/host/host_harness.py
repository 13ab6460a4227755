"""Start a real ComfyUI with the pack under custom_nodes/, talk to it over HTTP, stop it.

The server is a separate process (`main.py --cpu`), so nothing here imports ComfyUI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# Spaces, dots and dashes: the pack must not depend on its folder being a valid module name.
ODD_PACK_FOLDER = "comfyui-audiotoken.dev pack"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then kill if it has not ended within 10 s (ComfyUI's SIGINT shutdown can hang)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class LoggedProcess:
    """A child process whose output goes to `log_path`: `proc`, `_log` (the open file) are set by `start`."""

    log_path: Path
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ComfyServer(LoggedProcess):
    def __init__(self, comfy_root: str | Path, base: Path, extra_paths_yaml: Path | None = None,
                 front_end_root: Path | None = None):
        """`front_end_root`: a frontend's static folder to serve instead of the host's own pinned package."""
        self.comfy_root = Path(comfy_root)
        self.base = Path(base)
        self.extra_paths_yaml = extra_paths_yaml
        self.front_end_root = front_end_root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0, wait_for_node: str = "AudioTokenTextEncode") -> "ComfyServer":
        cmd = [sys.executable, str(self.comfy_root / "main.py"), "--cpu", "--disable-api-nodes",
               "--listen", "127.0.0.1", "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", "sqlite:///:memory:", "--disable-auto-launch", "--dont-print-server"]
        if self.extra_paths_yaml is not None:
            cmd += ["--extra-model-paths-config", str(self.extra_paths_yaml)]
        if self.front_end_root is not None:
            cmd += ["--front-end-root", str(self.front_end_root)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        # The pytest process may have the repo root on PYTHONPATH; in the server `nodes` must be ComfyUI's.
        env.pop("PYTHONPATH", None)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.comfy_root, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if self.get_json(f"/object_info/{wait_for_node}", timeout=5):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"ComfyUI did not serve {wait_for_node} within {timeout:.0f} s:\n{self.log()[-4000:]}")

    # --- HTTP -------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body=None, timeout: float = 30.0) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get_json(self, path: str, timeout: float = 30.0):
        status, raw = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status}: {raw[:500]!r}")
        return json.loads(raw)

    def post_prompt(self, prompt: dict, workflow: dict | None = None,
                    targets: list[str] | None = None) -> tuple[int, dict]:
        """`targets`: run only these output nodes (and what they need), as the frontend's "run selected"."""
        body = {"prompt": prompt, "client_id": "audiotoken-tests"}
        if workflow is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        if targets is not None:
            body["partial_execution_targets"] = targets
        status, raw = self.request("POST", "/prompt", body)
        return status, json.loads(raw)

    def wait_history(self, prompt_id: str, timeout: float = 180.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get_json(f"/history/{prompt_id}")
            if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
                entry = hist[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def run(self, prompt: dict, workflow: dict | None = None, timeout: float = 180.0,
            targets: list[str] | None = None) -> dict:
        """POST a prompt that must validate, and return its finished history entry."""
        status, answer = self.post_prompt(prompt, workflow, targets)
        if status != 200 or answer.get("node_errors"):
            raise AssertionError(f"prompt rejected ({status}): {json.dumps(answer, indent=1)[:3000]}")
        return self.wait_history(answer["prompt_id"], timeout)


def executed_nodes(entry: dict) -> tuple[list[str], list[str]]:
    """(ran, cached) node ids from a history entry's status messages."""
    ran, cached = [], []
    for event, data in entry["status"]["messages"]:
        if event == "execution_cached":
            cached += [str(n) for n in data.get("nodes", [])]
    outputs = entry.get("outputs", {})
    ran = [n for n in outputs if n not in cached]
    return ran, cached


def error_message(entry: dict) -> dict:
    for event, data in entry["status"]["messages"]:
        if event == "execution_error":
            return data
    raise AssertionError(f"no execution_error in {entry['status']}")


def saved_images(entry: dict) -> list[dict]:
    return [img for out in entry.get("outputs", {}).values() for img in out.get("images", [])
            if img.get("type") == "output"]


def install_pack(custom_nodes: Path, folder: str = ODD_PACK_FOLDER) -> Path:
    """Symlink the repository into custom_nodes/ under an unusual folder name (copy where links fail)."""
    custom_nodes.mkdir(parents=True, exist_ok=True)
    target = custom_nodes / folder
    try:
        target.symlink_to(REPO_ROOT, target_is_directory=True)
    except OSError:
        import shutil

        shutil.copytree(REPO_ROOT, target, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "tests"))
    return target


def asset_server(comfy_root: str | Path, assets: dict[str, Path], base: Path, folders=("checkpoints", "audio_encoders",
                 "audiotoken", "loras"), front_end_root: Path | None = None) -> ComfyServer:
    """A ComfyUI (not started) with the pack under an odd folder name, the test sounds in input/, and the generated
    model `folders` (host_assets) reached through extra_model_paths.yaml; the other model folders start empty."""
    import shutil

    install_pack(base / "custom_nodes")
    (base / "input").mkdir()
    for wav in assets["audio"].iterdir():
        shutil.copy(wav, base / "input" / wav.name)
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text(f"audiotoken_tests:\n  base_path: {assets['checkpoints'].parent}\n"
                         + "".join(f"  {folder}: {folder}\n" for folder in folders))
    return ComfyServer(comfy_root, base, yaml_path, front_end_root=front_end_root)


def quote(name: str) -> str:
    return urllib.parse.quote(name)
