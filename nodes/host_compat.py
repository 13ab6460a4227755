"""What the pack needs from ComfyUI beyond the public node API, checked once when the pack loads.

ComfyUI's internals change between releases (`SDTokenizer._try_get_embedding` changed its return value in
0.28.0). Each feature below lists the host details it relies on. A missing one gives a single log line at
start-up naming the ComfyUI version and the detail, and the nodes that need it fail with the same message,
instead of a traceback in the middle of a prompt.

No version number is compared: a host of any version passes when it has what FEATURES lists, so the releases
read but not run in CI (0.34-0.39, docs/design.md "Host compatibility") load, and one that drops a detail is
named whatever its number.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import tempfile
from pathlib import Path

ISSUES_URL = "https://github.com/comfyui-audiotoken/comfyui-audiotoken/issues"
log = logging.getLogger("audiotoken")


def comfyui_version() -> str:
    try:
        return importlib.import_module("comfyui_version").__version__
    except Exception:  # a host too old or too new to have the file
        return "unknown"


def _attrs(module: str, *names: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise LookupError(", ".join(f"{module}.{n}" for n in missing))


def _tokenizer_embedding_options() -> None:
    from comfy.sd1_clip import SDTokenizer

    params = inspect.signature(SDTokenizer.__init__).parameters
    missing = [p for p in ("embedding_directory", "embedding_size", "embedding_key") if p not in params]
    if missing:
        raise LookupError("comfy.sd1_clip.SDTokenizer(" + ", ".join(missing) + "=...)")


def _embedding_files_load() -> None:
    """The host reads a `{clip_l: [n, D]}` safetensors file by name from a folder list, as Text Encode writes it."""
    import torch
    from comfy.sd1_clip import load_embed
    from safetensors.torch import save_file

    want = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with tempfile.TemporaryDirectory(prefix="audiotoken_check_") as folder:
        save_file({"clip_l": want}, str(Path(folder) / "probe.safetensors"))
        got = load_embed("probe", [folder], 3, "clip_l")
    if got is None or not torch.equal(got.reshape(2, 3).float(), want):
        raise LookupError("comfy.sd1_clip.load_embed no longer reads {clip_l: [n, D]} .safetensors files")


FEATURES: dict[str, list] = {
    "model folders": [lambda: _attrs("folder_paths", "folder_names_and_paths", "models_dir",
                                     "supported_pt_extensions", "get_filename_list", "get_full_path",
                                     "get_folder_paths")],
    "model loading": [lambda: _attrs("comfy.model_patcher", "ModelPatcher"),
                      lambda: _attrs("comfy.model_management", "load_models_gpu", "text_encoder_device",
                                     "text_encoder_offload_device", "is_device_cpu", "should_use_fp16",
                                     "should_use_bf16")],
    "encode": [lambda: _attrs("comfy.utils", "ProgressBar"),
               lambda: _attrs("comfy.model_management", "throw_exception_if_processing_interrupted")],
    "text encode": [lambda: _attrs("comfy.sd1_clip", "SDTokenizer", "load_embed"),
                    _tokenizer_embedding_options, _embedding_files_load],
}

_problems: dict[str, str] | None = None


def changed_host_message(what: str) -> str:
    return (f"AudioToken cannot run on ComfyUI {comfyui_version()}: {what}. This host changed something the "
            f"pack relies on; update comfyui-audiotoken, or report it at {ISSUES_URL} with the ComfyUI version.")


def check_host() -> dict[str, str]:
    """Run every check once; `{feature: message}` for the features this host cannot serve, logged once."""
    global _problems
    if _problems is None:
        _problems = {}
        for feature, checks in FEATURES.items():
            failed = []
            for check in checks:
                try:
                    check()
                except Exception as exc:  # any failure means the detail is not what the pack expects
                    failed.append(str(exc) or type(exc).__name__)
            if failed:
                _problems[feature] = changed_host_message(f"{feature} needs {'; '.join(failed)}")
                log.error("[AudioToken] %s", _problems[feature])
    return _problems


def require(feature: str) -> None:
    """Raise the start-up message for `feature` if this host cannot serve it."""
    problem = check_host().get(feature)
    if problem:
        raise RuntimeError(problem)


def reset() -> None:
    """Forget the results (tests that change the host call this)."""
    global _problems
    _problems = None
