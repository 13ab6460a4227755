"""Run in a fresh interpreter by test_no_torchaudio.py: the host's modules, then torchaudio made unimportable,
then the pack loaded by ComfyUI's own loader and every node it registers executed once.

`python no_torchaudio_child.py SPEC.json REPORT.json`; SPEC names the pack folder and the files; REPORT gets what
ran, what the hook refused and to whom. The parent asserts on REPORT, so an exception here is reported too.

Why the host comes first: both host trees CI has (0.3.64, 0.33.0) predate ComfyUI 0.37, and 0.33.0 imports
torchaudio at module level (comfy/sd.py -> comfy/ldm/lightricks/vae/audio_vae.py, comfy/text_encoders/gemma4.py),
so it cannot start without one; 0.37+ does not import it at all. So the host's modules are imported first, then
every `torchaudio*` module is dropped from sys.modules and any further import of it raises, whoever asks. From
then on the pack is loaded and run: what must work without torchaudio is everything the pack adds. In the leg
with no torchaudio installed (scripts/newest_torch_env.sh) the old host gets an inert in-memory stand-in for its
module-level imports only (HostStandIn); it is dropped by the same block before the pack loads.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import json
import os
import sys
import traceback
import types
import wave
from pathlib import Path

BLOCKED = "torchaudio"
HERE = Path(__file__).resolve().parent


def blocked(fullname: str) -> bool:
    return fullname == BLOCKED or fullname.startswith(BLOCKED + ".")


class NoTorchaudio(importlib.abc.MetaPathFinder):
    """Makes `torchaudio` and `torchaudio.*` look not installed, noting who asked.

    First on sys.meta_path, it notes the request and finds nothing; every other finder is wrapped (Hidden) so it
    finds nothing either. So `import torchaudio` raises Python's own ModuleNotFoundError and
    `importlib.util.find_spec("torchaudio")` returns None, both as on an install without it. A finder that
    raised instead would break the libraries that probe for it (transformers does)."""

    def __init__(self, pack_root: Path):
        self.pack_root = pack_root
        self.refused: list[dict] = []  # imports
        self.probed: list[dict] = []   # importlib.util.find_spec: asking is fine, it answers None

    def find_spec(self, fullname, path=None, target=None):
        if blocked(fullname):
            probe = sys._getframe(2).f_code.co_name == "find_spec"  # importlib.util.find_spec -> _find_spec -> here
            (self.probed if probe else self.refused).append(
                {"module": fullname, "importer": importer_file(), "pack_chain": importer_chain(self.pack_root)})
        return None


class Hidden:
    """One of the interpreter's own meta path finders, blind to torchaudio."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, fullname, path=None, target=None):
        if blocked(fullname):
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(fullname, path, target) if find else None

    def __getattr__(self, attr):  # invalidate_caches, find_distributions (importlib.metadata), ...
        return getattr(self.finder, attr)


class HostStandIn(types.ModuleType):
    """`torchaudio` / `torchaudio.functional` for an old host's module-level imports where none is installed;
    any use raises. Never seen by the pack: block_torchaudio() drops it before the pack loads."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise RuntimeError(f"{self.__name__}.{attr}: torchaudio is not installed (this is the test's stand-in "
                           "for an old host's module-level import)")


def stand_in_for_host() -> str:
    """What the host will import as torchaudio: the installed one, or the stand-in where none is installed."""
    import importlib.util

    spec = importlib.util.find_spec(BLOCKED)
    if spec is not None:
        import importlib.metadata

        return f"installed {importlib.metadata.version(BLOCKED)}"
    # transformers asks whether torchaudio is installed when it is first imported and keeps the answer: let it
    # ask before the stand-in exists, so it answers "no" as on a real install without torchaudio.
    import transformers  # noqa: F401

    for name in (BLOCKED, f"{BLOCKED}.functional"):
        module = HostStandIn(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__path__ = []  # a package, so `import torchaudio.functional` finds the entry below
        sys.modules[name] = module
    sys.modules[BLOCKED].functional = sys.modules[f"{BLOCKED}.functional"]
    return "none installed: an inert stand-in for the host's own imports"


def importer_chain(pack_root: Path) -> list[str]:
    """The pack's files on the import stack, innermost first: which pack module's import led to the refusal."""
    chain, frame = [], sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.is_absolute():
            resolved = path.resolve()
            rel = resolved.relative_to(pack_root).as_posix() if resolved.is_relative_to(pack_root) else None
            # Not the pack: the tests, and the venvs and host copies that scripts/ keep in the checkout.
            if rel and rel.split("/")[0] != "tests" and not rel.startswith("."):
                if not chain or chain[-1] != rel:
                    chain.append(rel)
        frame = frame.f_back
    return chain


def importer_file() -> str:
    """The first frame outside the import machinery and this file: the module whose import statement ran."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith("<frozen importlib") and "importlib" not in Path(name).parts \
                and Path(name).resolve() != Path(__file__).resolve():
            return str(Path(name).resolve())
        frame = frame.f_back
    return "?"


def block_torchaudio(pack_root: Path) -> NoTorchaudio:
    """From here on `import torchaudio` fails; modules that already hold it keep their reference."""
    for name in [n for n in sys.modules if blocked(n)]:
        del sys.modules[name]  # a cached module would be returned without asking the finders
    hook = NoTorchaudio(pack_root)
    sys.meta_path[:] = [hook, *(Hidden(f) for f in sys.meta_path)]
    return hook


def read_wav(path: Path) -> dict:
    """ComfyUI's AUDIO value ({"waveform": [batch, channels, samples], "sample_rate"}) from 16-bit PCM."""
    import torch

    with wave.open(str(path), "rb") as w:
        rate, channels, frames = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
    pcm = torch.frombuffer(bytearray(frames), dtype=torch.int16).view(-1, channels).t()
    return {"waveform": (pcm.float() / 32768.0).unsqueeze(0), "sample_rate": rate}


def runners(spec: dict, registry: dict) -> dict:
    """One call per node id, in dependency order, each taking what earlier ones made from `state`."""
    import torch

    import comfy.sd

    def cls(node_id):
        return registry[node_id]

    def download(state):
        out = cls("AudioTokenDownloadModels").execute(spec["embedder"], spec["beats"])
        assert list(out[:2]) == [spec["embedder"], spec["beats"]], out
        for folder, name in (("audiotoken", spec["embedder"]), ("audio_encoders", spec["beats"])):
            assert (Path(spec["models"]) / folder / name).is_file(), f"{name} was not downloaded into {folder}"

    def loader(state):
        state["model"] = cls("AudioTokenModelLoader").execute(spec["embedder"], spec["beats"], "auto")[0]

    def encode(state):
        tokens, count = cls("AudioTokenEncode").execute(state["model"], state["audio"], mode="windows",
                                                         window_seconds=2.0)[:2]
        assert count == tokens.batch_size >= 2 and torch.isfinite(tokens.tokens["l"]).all()
        state["tokens"] = tokens

    def text_encode(state):
        clip = comfy.sd.load_checkpoint_guess_config(spec["checkpoint"], output_vae=False, output_clip=True,
                                                     te_model_options={"dtype": torch.float32})[1]
        cond = cls("AudioTokenTextEncode").execute(clip, state["tokens"], "a photo of <audio>")[0]
        assert cond[0][0].shape == (state["tokens"].batch_size, 77, 768) and torch.isfinite(cond[0][0]).all()

    def save(state):
        assert cls("AudioTokenSaveEmbedding").execute(state["tokens"], "no_torchaudio", 0, True)[0] \
            == "embedding:no_torchaudio"
        assert (Path(spec["embeddings"]) / "no_torchaudio.safetensors").is_file()

    def blend(state):
        mixed = cls("AudioTokenBlend").execute(state["tokens"], state["tokens"], 0.5, 2.0)[0]
        torch.testing.assert_close(mixed.tokens["l"], 2 * state["tokens"].tokens["l"])

    def schedule(state):
        frames = cls("AudioTokenSchedule").execute(state["model"], state["audio"], fps=4.0, frames=0,
                                                   window_seconds=1.0)[0]
        assert frames.batch_size >= 4 and torch.isfinite(frames.tokens["l"]).all()

    def describe(state):
        labels = cls("AudioTokenDescribe").execute(state["model"], state["audio"], k=3, window_seconds=2.0)[0]
        assert len(labels) == 1 and isinstance(labels[0], str) and labels[0], labels  # one text per sound

    return {"AudioTokenDownloadModels": download, "AudioTokenModelLoader": loader, "AudioTokenEncode": encode,
            "AudioTokenTextEncode": text_encode, "AudioTokenSaveEmbedding": save, "AudioTokenBlend": blend,
            "AudioTokenSchedule": schedule, "AudioTokenDescribe": describe}


def main(spec: dict, report: dict) -> None:
    sys.path.insert(0, str(HERE))
    # Last, for testkit (host_env's helpers): first, its nodes/ would shadow ComfyUI's own `nodes` module.
    sys.path.append(str(HERE.parents[1]))
    from host_env import comfy_in_process

    comfy_in_process()
    # The host first, with whatever it imports (see the module docstring), then the block.
    report["host_torchaudio"] = stand_in_for_host()
    import folder_paths
    import nodes as comfy_nodes

    report["host_imported_torchaudio"] = BLOCKED in sys.modules
    # The loader imports the pack under a name of its own (custom_nodes/<folder> as a path), so none of its
    # modules exists yet, and none can reuse a torchaudio imported above: the block drops it from sys.modules.
    hook = block_torchaudio(Path(spec["pack_dir"]).resolve())
    folder_paths.set_input_directory(spec["input"])  # Sample sounds are copied here at load, not into the tree

    models = Path(spec["models"])
    for folder in ("audiotoken", "audio_encoders"):  # empty: Download Models fills them from the mirror
        (models / folder).mkdir(parents=True, exist_ok=True)
        folder_paths.add_model_folder_path(folder, str(models / folder), is_default=True)
    folder_paths.add_model_folder_path("embeddings", spec["embeddings"], is_default=True)

    pack_dir = spec["pack_dir"]
    before = set(comfy_nodes.NODE_CLASS_MAPPINGS)
    report["loaded"] = asyncio.run(comfy_nodes.load_custom_node(pack_dir, module_parent="custom_nodes"))
    relative = f"custom_nodes.{os.path.basename(pack_dir)}"
    registry = {k: v for k, v in comfy_nodes.NODE_CLASS_MAPPINGS.items()
                if k not in before and getattr(v, "RELATIVE_PYTHON_MODULE", None) == relative}
    report["registered"] = sorted(registry)
    report["refused"], report["probed"] = hook.refused, hook.probed  # so far; completed at the end
    if not report["loaded"]:
        return  # the loader logged why; the refusals say which import
    extension = asyncio.run(sys.modules[pack_dir.replace(".", "_x_")].comfy_entrypoint())
    report["extension_nodes"] = sorted(c.GET_SCHEMA().node_id for c in asyncio.run(extension.get_node_list()))

    state = {"audio": read_wav(Path(spec["audio"]))}
    calls = runners(spec, registry)
    report["ran"], report["failed"] = [], {}
    for node_id in [n for n in calls if n in registry] + [n for n in registry if n not in calls]:
        try:
            if node_id not in calls:
                raise KeyError(f"{node_id} is registered but no_torchaudio_child.runners() has no call for it")
            calls[node_id](state)
            report["ran"].append(node_id)
        except Exception:
            report["failed"][node_id] = traceback.format_exc()
            if node_id in ("AudioTokenModelLoader", "AudioTokenEncode"):
                break  # everything after needs them

    report["refused"], report["probed"] = list(hook.refused), list(hook.probed)
    try:  # the hook notes this one too, after the copy above
        import torchaudio  # noqa: F401

        report["import_after"] = "imported"
    except ModuleNotFoundError as exc:
        report["import_after"] = str(exc)
    report["torchaudio_modules_after"] = sorted(n for n in sys.modules if n.split(".")[0] == BLOCKED)


if __name__ == "__main__":
    spec_path, report_path = sys.argv[1:3]
    out: dict = {}
    try:
        main(json.loads(Path(spec_path).read_text()), out)
    except Exception:
        out["error"] = traceback.format_exc()
    Path(report_path).write_text(json.dumps(out, indent=1))
