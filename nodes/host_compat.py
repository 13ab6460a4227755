"""What the pack needs from ComfyUI beyond the public node API, checked once when the pack loads.

ComfyUI's internals change between releases (`SDTokenizer._try_get_embedding` changed its return value in
0.28.0). Each feature below lists the host details it relies on. A missing one gives a single log line at
start-up naming the ComfyUI version and the detail, and the nodes that need it fail with the same message,
instead of a traceback in the middle of a prompt.

No version number is compared: a host of any version passes when it has what FEATURES lists, so the releases
read but not run in CI (0.34-0.39, docs/design.md "Host compatibility") load, and one that drops a detail is
named whatever its number.

A host can also have every detail and refuse to use it: ComfyUI's governed builds return None from
`load_embed` under a model policy. That is no change a pack update would follow, so it has its own message
(`embeddings_refused_message`), given at start-up and by Text Encode, whichever finds it first.
"""

from __future__ import annotations

import dataclasses
import functools
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


class Refused(Exception):
    """The host has what the pack needs but will not serve it (a policy of the build)."""


def embeddings_refused_message() -> str:
    return (f"This ComfyUI ({comfyui_version()}) refuses embedding files: its load_embed gave nothing for the "
            "textual-inversion file AudioToken wrote for the sound, as builds with a model policy that forbids "
            "embeddings do. AudioToken Text Encode places the sound through the host's own embedding:NAME "
            "files, so it cannot run here (Save Embedding's files are ignored by this host too). Allow "
            "embeddings in this ComfyUI's model policy, or put the words of AudioToken Describe into the "
            "model's own prompt node.")


def refuses_embedding(folder: Path, name: str, size: int, key: str) -> bool:
    """Whether the host's `load_embed` gives nothing for the embedding file `folder/name.safetensors` that is
    there: a refusal, not a lookup that changed."""
    from comfy.sd1_clip import load_embed

    return (Path(folder) / f"{name}.safetensors").is_file() and load_embed(name, [str(folder)], size, key) is None


def _embedding_files_load() -> None:
    """The host reads a `{clip_l: [n, D]}` safetensors file by name from a folder list, as Text Encode writes it."""
    import torch
    from comfy.sd1_clip import load_embed
    from safetensors.torch import save_file

    want = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with tempfile.TemporaryDirectory(prefix="audiotoken_check_") as folder:
        save_file({"clip_l": want}, str(Path(folder) / "probe.safetensors"))
        got = load_embed("probe", [folder], 3, "clip_l")
    if got is None:
        raise Refused(embeddings_refused_message())
    if not isinstance(got, torch.Tensor) or got.numel() != want.numel() or \
            not torch.equal(got.reshape(2, 3).float(), want):
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


@functools.cache
def schema_fields() -> frozenset[str]:
    """The fields this host's `io.Schema` takes. Optional ones the pack fills where the host has them (not a
    FEATURE: a host without them serves every node). `search_aliases` came after 0.3.64; 0.33.0 has it."""
    from comfy_api.latest import io

    return frozenset(f.name for f in dataclasses.fields(io.Schema))


def changed_host_message(what: str) -> str:
    return (f"AudioToken cannot run on ComfyUI {comfyui_version()}: {what}. This host changed something the "
            f"pack relies on; update comfyui-audiotoken, or report it at {ISSUES_URL} with the ComfyUI version.")


def check_host() -> dict[str, str]:
    """Run every check once; `{feature: message}` for the features this host cannot serve, logged once."""
    global _problems
    if _problems is None:
        _problems = {}
        for feature, checks in FEATURES.items():
            failed, refused = [], None
            for check in checks:
                try:
                    check()
                except Refused as exc:
                    refused = str(exc)
                except Exception as exc:  # any other failure means the detail is not what the pack expects
                    failed.append(str(exc) or type(exc).__name__)
            if failed or refused:
                _problems[feature] = changed_host_message(f"{feature} needs {'; '.join(failed)}") if failed \
                    else refused
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
