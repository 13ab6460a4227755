"""AudioTokenSaveEmbedding: store audio tokens as a textual-inversion file usable as `embedding:NAME`."""

from __future__ import annotations

import os
import re

import folder_paths
from comfy_api.latest import io, ui

from . import host_compat
from .embedding_file import write_embedding
from .folders import EMBEDDINGS_FOLDER
from .schema import schema
from .types import CATEGORY, AudioTokensType

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def check_name(name: str) -> str | None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name.endswith(".safetensors"):
        return (f"Embedding name '{name}' is not usable: use letters, digits, '_', '-' or '.', no spaces or "
                "folders (the prompt reads embedding:NAME up to the next space), and no file extension.")
    return None


class AudioTokenSaveEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenSaveEmbedding",
            search_aliases=["textual inversion", "save embedding", "audio embedding", "sound"],
            display_name="AudioToken Save Embedding",
            category=CATEGORY,
            is_output_node=True,
            description=("Saves one sound's tokens to models/embeddings/NAME.safetensors, every head the embedder "
                         "has under the host's key (clip_l, clip_g, clip_h, t5xxl, qwen25_7b, qwen3_4b, ...), so "
                         "any prompt node can use it as embedding:NAME without this pack wherever the host reads "
                         "embedding names (Qwen-Image's text encoder does not)."),
            inputs=[
                AudioTokensType.Input("audio_tokens", tooltip="Tokens from AudioToken Encode or Blend."),
                io.String.Input("name", default="audiotoken_sound",
                                tooltip="File and prompt name: write embedding:NAME in a prompt to use it."),
                io.Int.Input("batch_index", default=0, min=0, max=4095,
                             tooltip="Which sound (or window) of the batch to save; 0 is the first."),
                io.Boolean.Input("overwrite", default=True,
                                 tooltip="Replace an existing file of the same name. Off: fail instead."),
            ],
            outputs=[io.String.Output(display_name="prompt_text",
                                      tooltip="'embedding:NAME', ready to paste into or concatenate with a prompt.")],
        )

    @classmethod
    def validate_inputs(cls, name=None):
        if isinstance(name, str):
            return check_name(name) or True
        return True

    @classmethod
    def execute(cls, audio_tokens, name, batch_index=0, overwrite=True) -> io.NodeOutput:
        host_compat.require("model folders")
        problem = check_name(name)
        if problem:
            raise ValueError(problem)
        folder = folder_paths.get_folder_paths(EMBEDDINGS_FOLDER)[0]
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.safetensors")
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} already exists; pick another name or turn overwrite on.")
        # Atomic: a prompt tokenizing at the same moment never sees half a file.
        tensors = write_embedding(path, audio_tokens.tokens, int(batch_index), audio_tokens.info)
        word = f"embedding:{name}"
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(tensors.items()))
        return io.NodeOutput(word, ui=ui.PreviewText(f"Saved {path} ({shapes}). Use it in a prompt as {word}"))
