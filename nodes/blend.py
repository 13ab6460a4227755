"""AudioTokenBlend: a weighted mix of two sounds' tokens."""

from __future__ import annotations

from comfy_api.latest import io

from .types import CATEGORY, AudioTokens, AudioTokensType


def blend_tokens(a: AudioTokens, b: AudioTokens, weight: float, scale: float) -> AudioTokens:
    """`scale * ((1 - weight) * a + weight * b)` per CLIP head; a batch of 1 pairs with any batch."""
    shared = sorted(set(a.tokens) & set(b.tokens))
    if not shared:
        raise ValueError(f"The two token sets share no CLIP head (A: {sorted(a.tokens)}, B: {sorted(b.tokens)}); "
                         "blend tokens made by embedders for the same checkpoint family.")
    if a.n_tokens != b.n_tokens:
        raise ValueError(f"A has {a.n_tokens} token(s) per sound and B has {b.n_tokens}; they cannot be mixed.")
    if a.batch_size != b.batch_size and 1 not in (a.batch_size, b.batch_size):
        raise ValueError(f"A holds {a.batch_size} sounds and B holds {b.batch_size}; blend equal batches, or a "
                         "single sound with a batch.")
    mixed = {}
    for name in shared:
        ta, tb = a.tokens[name], b.tokens[name]
        if ta.shape[-1] != tb.shape[-1]:
            raise ValueError(f"Head {name}: A is {ta.shape[-1]} wide and B is {tb.shape[-1]} wide.")
        mixed[name] = float(scale) * ((1.0 - float(weight)) * ta + float(weight) * tb)
    info = {"blend": {"a": a.info, "b": b.info, "weight": float(weight), "scale": float(scale)}}
    return AudioTokens(mixed, info=info)


class AudioTokenBlend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AudioTokenBlend",
            display_name="AudioToken Blend",
            category=CATEGORY,
            description="Mixes two sounds' tokens: scale x ((1 - weight) x A + weight x B).",
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
