"""AudioTokenModelLoader: embedder file + BEATs file -> AUDIOTOKEN_MODEL."""

from __future__ import annotations

from comfy_api.latest import io

from . import folders, host_compat
from .download_models import ensure_model
from .runtime import PRECISIONS, get_model
from .types import CATEGORY, AudioTokenModelType, combo_problem


DOWNLOAD_NOTE = (f" A name ending in '{folders.TO_DOWNLOAD}' is an official file that is not in the folder yet: "
                 "queueing the graph downloads and verifies it first (once), with a progress bar.")


class AudioTokenModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        encoders = folders.encoder_files()
        return io.Schema(
            node_id="AudioTokenModelLoader",
            display_name="AudioToken Model Loader",
            category=CATEGORY,
            description=("Loads an AudioToken embedder (models/audiotoken) and the BEATs audio encoder it was "
                         "trained with (models/audio_encoders). Files are re-read only when they change."),
            inputs=[
                io.Combo.Input("embedder_name",
                               options=folders.with_downloads(folders.EMBEDDER_FOLDER,
                                                              folders.list_files(folders.EMBEDDER_FOLDER)),
                               tooltip="Embedder in models/audiotoken: the official embedder_learned_embeds.bin "
                                       "or a .safetensors written by the AudioToken trainer." + DOWNLOAD_NOTE),
                io.Combo.Input("audio_encoder_name",
                               options=folders.with_downloads(folders.ENCODER_FOLDER, folders.beats_names(encoders)),
                               tooltip="BEATs checkpoint in models/audio_encoders, e.g. "
                                       "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt (the official one). Only "
                                       "BEATs files are listed: ComfyUI's own wav2vec2/Whisper encoders share "
                                       "this folder." + folders.left_out_note(encoders) + DOWNLOAD_NOTE),
                io.Combo.Input("precision", options=list(PRECISIONS), default="auto",
                               tooltip="auto: fp32 on CPU, fp16 (else bf16) on GPUs that support it. "
                                       "The embedder itself always runs in fp32."),
            ],
            outputs=[AudioTokenModelType.Output(display_name="AUDIOTOKEN_MODEL",
                                                tooltip="BEATs + embedder, for AudioToken Encode.")],
        )

    @classmethod
    def validate_inputs(cls, embedder_name=None, audio_encoder_name=None, precision=None):
        # The server does not check V3 combo values against their options, so do it here.
        try:
            if embedder_name is not None and not folders.to_download(folders.EMBEDDER_FOLDER, embedder_name):
                folders.resolve(folders.EMBEDDER_FOLDER, embedder_name, "Embedder")
            if audio_encoder_name is not None and not folders.to_download(folders.ENCODER_FOLDER, audio_encoder_name):
                folders.resolve_beats(audio_encoder_name)
        except (FileNotFoundError, ValueError) as exc:
            return str(exc)
        return combo_problem("precision", precision, PRECISIONS) or True

    @classmethod
    def fingerprint_inputs(cls, embedder_name=None, audio_encoder_name=None, precision=None, **_):
        return (folders.file_fingerprint(folders.EMBEDDER_FOLDER, embedder_name),
                folders.file_fingerprint(folders.ENCODER_FOLDER, audio_encoder_name), precision)

    @classmethod
    def execute(cls, embedder_name, audio_encoder_name, precision="auto") -> io.NodeOutput:
        host_compat.require("model folders")
        host_compat.require("model loading")
        embedder_path = _fetched(folders.EMBEDDER_FOLDER, embedder_name) or \
            folders.resolve(folders.EMBEDDER_FOLDER, embedder_name, "Embedder")
        encoder_path = _fetched(folders.ENCODER_FOLDER, audio_encoder_name) or \
            folders.resolve_beats(audio_encoder_name)
        return io.NodeOutput(get_model(embedder_path, encoder_path, precision))


def _fetched(folder: str, choice: str) -> str | None:
    """The path of an official file chosen with the download mark, fetched first if it is still missing."""
    name = folders.to_download(folder, choice)
    return None if name is None else ensure_model(folder, name)
