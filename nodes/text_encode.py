"""AudioTokenTextEncode: a prompt with `<audio>` placeholders + audio tokens -> CONDITIONING."""

from __future__ import annotations

from comfy_api.latest import io

from .splice import encode_with_tokens, missing_placeholder_message
from .types import CATEGORY, PLACEHOLDER, AudioTokensType


class AudioTokenTextEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AudioTokenTextEncode",
            display_name="AudioToken Text Encode",
            category=CATEGORY,
            description=(f"Encodes a prompt in which {PLACEHOLDER} stands for the sound. Works like CLIP Text "
                         "Encode: weights such as (<audio>:1.3), several placeholders and long prompts are fine. "
                         "A batch of sounds gives a batch of conditionings, one image per sound."),
            inputs=[
                io.Clip.Input("clip", tooltip="The CLIP of the checkpoint (SD1.x, SD2.x or SDXL) the embedder "
                                              "was trained for."),
                AudioTokensType.Input("audio_tokens", tooltip="Tokens from AudioToken Encode (or Blend)."),
                io.String.Input("text", multiline=True, dynamic_prompts=True, default=f"a photo of {PLACEHOLDER}",
                                tooltip=f"The prompt. Write {PLACEHOLDER} where the sound belongs; it may appear "
                                        f"more than once and inside weights like ({PLACEHOLDER}:1.3)."),
            ],
            outputs=[io.Conditioning.Output(tooltip="Conditioning for KSampler; batch size = number of sounds "
                                                    "(or windows) in audio_tokens.")],
        )

    @classmethod
    def validate_inputs(cls, text=None):
        # A linked text arrives as None here; execute() checks it again.
        if isinstance(text, str):
            return missing_placeholder_message(text) or True
        return True

    @classmethod
    def execute(cls, clip, audio_tokens, text) -> io.NodeOutput:
        if clip is None:
            raise ValueError("No CLIP: the checkpoint has no text encoder. Connect the CLIP output of a "
                             "checkpoint loader or a CLIP loader.")
        return io.NodeOutput(encode_with_tokens(clip, text, audio_tokens.tokens))
