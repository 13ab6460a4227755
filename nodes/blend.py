"""AudioTokenBlend: a weighted mix of two sounds' tokens."""

from __future__ import annotations

import torch
from comfy_api.latest import io

from .schema import schema
from .types import CATEGORY, AudioTokens, AudioTokensType, HeardRows, KeyframeTokens


def blend_tokens(a: AudioTokens, b: AudioTokens, weight: float, scale: float) -> AudioTokens:
    """`scale * ((1 - weight) * a + weight * b)` per CLIP head; a batch of 1 pairs with any batch."""
    shared = sorted(set(a.tokens) & set(b.tokens))
    if not shared:
        raise ValueError(f"The two token sets share no CLIP head (A: {sorted(a.tokens)}, B: {sorted(b.tokens)}); "
                         "blend tokens made by embedders for the same checkpoint family.")
    counts_a, counts_b = ({k: t.n_tokens[k] for k in shared} for t in (a, b))
    if counts_a != counts_b:
        raise ValueError(f"A has {counts_a} token(s) per sound and B has {counts_b}; they cannot be mixed.")
    if a.batch_size != b.batch_size and 1 not in (a.batch_size, b.batch_size):
        raise ValueError(f"A holds {a.batch_size} sounds and B holds {b.batch_size}; blend equal batches, or a "
                         "single sound with a batch.")
    for name in shared:
        if a.tokens[name].shape[-1] != b.tokens[name].shape[-1]:
            raise ValueError(f"Head {name}: A is {a.tokens[name].shape[-1]} wide and B is "
                             f"{b.tokens[name].shape[-1]} wide.")

    def mix(ta, tb):
        return float(scale) * ((1.0 - float(weight)) * ta + float(weight) * tb)

    info = {"blend": {"a": a.info, "b": b.info, "weight": float(weight), "scale": float(scale)}}
    keyframes = blend_keyframes(a, b, shared, mix)
    tokens = {name: mix(a.tokens[name], b.tokens[name]) for name in shared}
    # Each side's words per row of the result: per keyframe (a schedule's own, or a steady sound's one set) when
    # the blend keeps keyframes, else per token set (a schedule's per-keyframe words do not fit its frames).
    words = blend_words(_row_words(a, keyframes is not None), _row_words(b, keyframes is not None), weight)
    rows = keyframes.schedule.n_keys if keyframes is not None else next(iter(tokens.values())).shape[0]
    if words and len(words) == 1:  # a single sound's words pair with every row, as its tokens do
        words = words * rows
    heard = HeardRows(words) if words and len(words) == rows else None
    return AudioTokens(tokens, info=info, keyframes=keyframes, heard=heard)


def blend_words(wa: list[str] | None, wb: list[str] | None, weight: float) -> list[str] | None:
    """What BEATs heard in the mix, row by row, for Text Encode's word route: one side's words at weight 0 or 1
    or where only one side has words, otherwise both (A's first, a label said once)."""
    if weight <= 0 or not wb:
        return wa
    if weight >= 1 or not wa:
        return wb
    if len(wa) != len(wb) and 1 not in (len(wa), len(wb)):
        return None
    rows = max(len(wa), len(wb))
    out = []
    for i in range(rows):
        labels = [w for text in (wa[0 if len(wa) == 1 else i], wb[0 if len(wb) == 1 else i])
                  for w in text.split(", ") if w]
        out.append(", ".join(dict.fromkeys(labels)))
    return out


def _row_words(tokens: AudioTokens, per_keyframe: bool) -> list[str] | None:
    if tokens.heard is None or (tokens.keyframes is not None and not per_keyframe):
        return None
    return tokens.heard.words


def blend_keyframes(a: AudioTokens, b: AudioTokens, shared, mix) -> KeyframeTokens | None:
    """The keyframes of the blend, so Text Encode still runs once per keyframe, not once per frame.

    Mixing is linear, as the travel between keyframes is, so mixing the keyframes gives exactly the mix of the
    per-frame tokens. That holds when both sides follow the same schedule, or one side is a schedule and the
    other one steady sound; any other pairing keeps only the per-frame tokens.
    """
    ka, kb = a.keyframes, b.keyframes
    if ka is None and kb is None:
        return None
    if ka is not None and kb is not None and not same_schedule(ka.schedule, kb.schedule):
        return None
    if (ka is None and a.batch_size != 1) or (kb is None and b.batch_size != 1):
        return None
    rows_a, rows_b = _key_rows(a), _key_rows(b)
    return KeyframeTokens({n: mix(rows_a[n], rows_b[n]) for n in shared}, (ka or kb).schedule)


def _key_rows(tokens: AudioTokens) -> dict:
    """A side's tokens per keyframe: a schedule's keyframes, or a steady sound's one set (it pairs with each)."""
    return tokens.keyframes.tokens if tokens.keyframes is not None else tokens.tokens


def same_schedule(s, t) -> bool:
    return torch.equal(s.key_times, t.key_times) and torch.equal(s.frame_times, t.frame_times)


class AudioTokenBlend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenBlend",
            search_aliases=["mix sounds", "blend sounds", "audio blend", "sound", "audio prompt"],
            display_name="AudioToken Blend",
            category=CATEGORY,
            description=("Mixes two sounds' tokens: scale x ((1 - weight) x A + weight x B). A frame schedule stays "
                         "one, mixed keyframe by keyframe, when the other input is the same schedule or one "
                         "steady sound."),
            inputs=[
                AudioTokensType.Input("audio_tokens_a", tooltip="First sound's tokens (weight 0 = only A)."),
                AudioTokensType.Input("audio_tokens_b", tooltip="Second sound's tokens (weight 1 = only B)."),
                io.Float.Input("weight", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Share of B in the mix: 0 keeps A, 1 gives B, 0.5 is an even blend."),
                io.Float.Input("scale", default=1.0, min=0.0, max=4.0, step=0.01,
                               tooltip="Multiplies the mixed vectors. Averaging shrinks them a little; "
                                       "1.0-1.2 keeps the sound's strength."),
            ],
            outputs=[AudioTokensType.Output(display_name="AUDIO_TOKENS", tooltip="The blended tokens.")],
        )

    @classmethod
    def execute(cls, audio_tokens_a, audio_tokens_b, weight=0.5, scale=1.0) -> io.NodeOutput:
        return io.NodeOutput(blend_tokens(audio_tokens_a, audio_tokens_b, weight, scale))
