"""AudioTokenModelLoader: embedder file + BEATs file -> AUDIOTOKEN_MODEL."""

from __future__ import annotations

from comfy_api.latest import io

from ..audiotoken_core import sources
from ..audiotoken_core.download import DownloadError, missing_lines, missing_summary
from ..audiotoken_core.precision import AUTO, CHOICES, RULE
from . import folders, host_compat
from .download_models import ensure_model
from .node_text import show_on_node
from .runtime import get_model
from .schema import schema
from .types import CATEGORY, AudioTokenModelType, combo_problem

OFFICIAL_NOTE = (" The official file is always listed, also before it is on disk: queueing the graph then downloads "
                 "and verifies it first (once), with a progress bar on this node.")


class AudioTokenModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        encoders = folders.encoder_files()
        return schema(
            node_id="AudioTokenModelLoader",
            search_aliases=["audiotoken", "load audio model", "BEATs", "sound to image", "audio to image",
                            "textual inversion"],
            display_name="AudioToken Model Loader",
            category=CATEGORY,
            description=(f"Loads an AudioToken embedder (models/{folders.EMBEDDER_FOLDER}) and the BEATs audio "
                         f"encoder it was trained with (models/{folders.ENCODER_FOLDER}). The official files are fetched when queued if "
                         "they are missing. Files are re-read only when they change."),
            inputs=[
                io.Combo.Input("embedder_name",
                               options=folders.with_official(folders.EMBEDDER_FOLDER,
                                                             folders.list_files(folders.EMBEDDER_FOLDER)),
                               tooltip=f"Embedder in models/{folders.EMBEDDER_FOLDER}: the official "
                                       f"{sources.official('embedder').name} or a .safetensors written by the "
                                       "AudioToken trainer." + OFFICIAL_NOTE
                                       + folders.fetch_note(folders.EMBEDDER_FOLDER)),
                io.Combo.Input("audio_encoder_name",
                               options=folders.with_official(folders.ENCODER_FOLDER, folders.beats_names(encoders)),
                               tooltip=f"BEATs checkpoint in models/{folders.ENCODER_FOLDER}, e.g. "
                                       f"{sources.official('audio_encoder').name} (the official one). Only "
                                       "BEATs files are listed: ComfyUI's own wav2vec2/Whisper encoders share "
                                       "this folder." + folders.left_out_note(encoders) + OFFICIAL_NOTE
                                       + folders.fetch_note(folders.ENCODER_FOLDER)),
                io.Combo.Input("precision", options=list(CHOICES), default=AUTO,
                               tooltip=f"BEATs' precision. {RULE}; ComfyUI's --force-fp32 / --force-fp16 count. "
                                       "The embedder itself always runs in fp32."),
            ],
            outputs=[AudioTokenModelType.Output(display_name="AUDIOTOKEN_MODEL",
                                                tooltip="BEATs + embedder, for AudioToken Encode.")],
        )

    @classmethod
    def validate_inputs(cls, embedder_name=None):
        # The host shows the returned text on every input this function takes, so it takes one: a missing
        # embedder (the file a Flux or SDXL template's user trains) is reported on embedder_name alone, with the
        # way to train it. The BEATs file is checked where it can be named on its own input: 0.33.0's own list
        # check on audio_encoder_name (only BEATs files are listed), and `execute` on every host.
        if embedder_name is None or folders.official_to_fetch(folders.EMBEDDER_FOLDER, embedder_name):
            return True  # a link, or an official file that queueing fetches
        try:
            _embedder_path(embedder_name)
        except (FileNotFoundError, ValueError) as exc:
            return str(exc)
        return True

    @classmethod
    def fingerprint_inputs(cls, embedder_name=None, audio_encoder_name=None, precision=None, **_):
        return (folders.file_fingerprint(folders.EMBEDDER_FOLDER, embedder_name),
                folders.file_fingerprint(folders.ENCODER_FOLDER, audio_encoder_name), precision)

    @classmethod
    def execute(cls, embedder_name, audio_encoder_name, precision=AUTO) -> io.NodeOutput:
        host_compat.require("model folders")
        host_compat.require("model loading")
        problem = combo_problem("precision", precision, CHOICES)
        if problem:
            raise ValueError(problem)
        # Both official files are fetched before either failure is reported, so one message names every file
        # that is still missing (and the next queue has one file less to wait for). One short line per file is
        # shown on the node and opens the error; the full text follows, one file a paragraph, and the server
        # log keeps it whole.
        paths, failed = [], []
        for folder, name, check in ((folders.EMBEDDER_FOLDER, embedder_name, _embedder_path),
                                    (folders.ENCODER_FOLDER, audio_encoder_name, folders.resolve_beats)):
            try:
                paths.append(ensure_model(folder, name) if folders.official_to_fetch(folder, name) else check(name))
            except DownloadError as exc:
                failed.append(exc)
        if failed:
            show_on_node(missing_lines(failed))
            raise DownloadError(missing_summary(failed))
        return io.NodeOutput(get_model(*paths, precision))


TRAIN_HINT = ("Embedders for other models than SD1.x (Flux, SD3.5, SDXL, Qwen-Image, Z-Image) are ones you train: "
              "`python -m train --base-model <its diffusers folder> ...` writes audiotoken-embedder.safetensors "
              "(the pack's docs/training.md).")


def _embedder_path(name: str) -> str:
    try:
        return folders.resolve(folders.EMBEDDER_FOLDER, name, "Embedder")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} {TRAIN_HINT}") from None
