"""Where the audio token goes: the words that mark its place in a prompt, and which text encoders it fits.

One home for nodes, trainer and evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

# What the nodes, docs and examples write.
PLACEHOLDER = "<audio>"
# Every spelling the trainer accepts; `<*>` is the original code's training prompt ("a photo of <*>").
PLACEHOLDERS = ("<*>", PLACEHOLDER)


def fits(token_widths: Mapping[str, int], encoder: str, width: int) -> bool:
    """Whether the embedder has a token for text encoder `encoder` (a CLIP name: l, g, h) of this width."""
    return encoder in token_widths and int(token_widths[encoder]) == int(width)


def check_fits(token_widths: Mapping[str, int], encoder_widths: Mapping[str, int],
               embedder: str = "the embedder") -> None:
    """Raise ValueError naming each text encoder the embedder has no token for, or one of another width."""
    problems = []
    for name, width in encoder_widths.items():
        if name not in token_widths:
            problems.append(f"no token for text encoder {name} ({width} wide)")
        elif not fits(token_widths, name, width):
            problems.append(f"its {name} token is {token_widths[name]} wide, the text encoder {width}")
    if problems:
        raise ValueError(f"{embedder} does not fit these text encoders: {'; '.join(problems)} (it has tokens "
                         f"{dict(token_widths)}); it was trained for another base model family")
