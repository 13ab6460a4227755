"""AudioTokenTextEncode: a prompt with `<audio>` placeholders + audio tokens -> CONDITIONING, for any CLIP."""

from __future__ import annotations

from comfy_api.latest import io, ui

from .limits import check_keyed_conditioning, check_schedule_size
from .runtime import host_progress
from .schema import schema
from .splice import encode_with_tokens, missing_placeholder_message, plan_splice
from .types import CATEGORY, PLACEHOLDER, AudioTokensType, combo_problem

HEARD, FALLBACK = "what BEATs heard", "fallback text"
WORD_SOURCES = (HEARD, FALLBACK)


class AudioTokenTextEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenTextEncode",
            search_aliases=["sound to image", "audio to image", "audio prompt", "sound prompt", "textual inversion",
                            "clip text encode audio"],
            display_name="AudioToken Text Encode",
            category=CATEGORY,
            description=(f"Encodes a prompt in which {PLACEHOLDER} stands for the sound, for any checkpoint. In each "
                         "text encoder the embedder has a head for (clip_l, clip_g, T5-XXL, Qwen2.5-VL, Qwen3: one "
                         "head per encoder width) the sound becomes the audio token; in every other encoder it "
                         "becomes words. The preview names each encoder's route. "
                         "Weights such as (<audio>:1.3), several placeholders and long prompts are fine. A batch of "
                         "sounds gives a batch of conditionings; a schedule gives one per frame."),
            inputs=[
                io.Clip.Input("clip", tooltip="The CLIP of the checkpoint, or of a CLIP loader (any model family)."),
                AudioTokensType.Input("audio_tokens", tooltip="Tokens from AudioToken Encode, Schedule or Blend."),
                io.String.Input("text", multiline=True, dynamic_prompts=True, default=f"a photo of {PLACEHOLDER}",
                                tooltip=f"The prompt. Write {PLACEHOLDER} where the sound belongs; it may appear "
                                        f"more than once and inside weights like ({PLACEHOLDER}:1.3)."),
                io.Combo.Input("words", options=list(WORD_SOURCES), default=HEARD, optional=True,
                               tooltip="What replaces the placeholder in text encoders the embedder has no token "
                                       "for: the AudioSet labels BEATs heard (needs a BEATs checkpoint with its "
                                       "AudioSet head, as the official one), or the fallback text below."),
                io.String.Input("fallback_text", default="", optional=True,
                                tooltip="Words for the placeholder where no token fits, when 'words' is fallback "
                                        "text or BEATs has no AudioSet head. Link AudioToken Describe here to "
                                        "choose the labels yourself."),
            ],
            outputs=[io.Conditioning.Output(tooltip="Conditioning for KSampler; batch size = number of sounds, "
                                                    "windows or frames in audio_tokens.")],
        )

    @classmethod
    def validate_inputs(cls, text=None, words=None):
        # A linked text arrives as None here; execute() checks it again.
        if isinstance(text, str):
            problem = missing_placeholder_message(text)
            if problem:
                return problem
        return combo_problem("words", words, WORD_SOURCES) or True

    @classmethod
    def execute(cls, clip, audio_tokens, text, words=HEARD, fallback_text="") -> io.NodeOutput:
        if clip is None:
            raise ValueError("No CLIP: the checkpoint has no text encoder. Connect the CLIP output of a "
                             "checkpoint loader or a CLIP loader.")
        keyframes = getattr(audio_tokens, "keyframes", None)
        rows = keyframes.tokens if keyframes is not None else audio_tokens.tokens
        plan = plan_splice(clip, rows)  # each encoder's route, once: for the size check, the splice and the preview
        if keyframes is not None:  # before the first text-encoder run: a too long schedule is refused with its size
            check_schedule_size(keyframes.schedule, plan.widths, estimate=True)
        prompts, source = word_prompts(audio_tokens, next(iter(rows.values())).shape[0], words, fallback_text or "")
        conditioning = encode_with_tokens(clip, text, rows, prompts, progress=host_progress(), plan=plan)
        if keyframes is not None:
            # One text-encoder run per keyframe, then the outputs are interpolated per frame, as prompt travel does.
            for c, _ in conditioning:
                check_keyed_conditioning(keyframes.schedule, c)
            conditioning = [[keyframes.schedule.interpolate(c), _interpolate_extras(keyframes.schedule, x, c)]
                            for c, x in conditioning]
        return io.NodeOutput(conditioning, ui=ui.PreviewText(plan.describe(source)))


def word_prompts(audio_tokens, rows: int, words: str, fallback: str) -> tuple[list[str], str]:
    """The words for each token row (each keyframe when there are keyframes), and how the preview names their
    source."""
    heard = audio_tokens.heard.words if getattr(audio_tokens, "heard", None) is not None else None
    if words == HEARD and heard and len(heard) == rows:
        shown = heard[0] if rows == 1 else f"{heard[0]} … ({rows} sets)"
        # A row where nothing scored clearly takes the fallback text rather than nothing.
        return [h or fallback for h in heard], f"words '{shown}' (what BEATs heard)"
    why = "" if words == FALLBACK else (" (no words of what BEATs heard came with these tokens: its checkpoint "
                                        "has no AudioSet head, or they do not line up with the token sets)")
    return [fallback] * rows, f"fallback text '{fallback}'{why}"


def _interpolate_extras(schedule, extras: dict, keyed_cond) -> dict:
    out = dict(extras)
    for key, value in extras.items():
        if hasattr(value, "shape") and value.ndim > 0 and value.shape[0] == keyed_cond.shape[0]:
            out[key] = schedule.interpolate(value)
    return out
