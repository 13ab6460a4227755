"""The window input of Encode, Describe and Schedule: 0 stands for the embedder's own window.

An embedder file records the window its tokens are meant for (`window_seconds`, what the trainer was told to
record); only at that length are they the tokens it learned to give. So the nodes ask the model for it
(`AudioTokenModel.window_seconds`) unless the user sets one. A widget needs a number, hence 0; a workflow saved
with an explicit 10 still means 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from comfy_api.latest import io

EMBEDDERS = 0.0
# BEATs attention memory grows with the square of the window (its position bias and scores are
# [heads, tokens, tokens], 50 tokens a second): a CPU host with the full-size model peaks at 1.5 GB RSS at
# 30 s, 2.2 GB at 60 s, 5.1 GB at 120 s, and 600 s would need about 100 GB (docs/benchmarks.md). BEATs and
# the embedder work on 10 s AudioSet clips and BEATs' relative positions stop at 16 s, so longer sounds
# belong to mode mean/windows. (The core runs fewer rows a pass for longer windows: pipeline.rows_per_pass.)
MAX_WINDOW_S = 30.0


def window_input(shortest: float, tooltip: str) -> io.Float.Input:
    """The `window_seconds` widget: 0 (the embedder's window) or `shortest` to `MAX_WINDOW_S` seconds."""
    return io.Float.Input(
        "window_seconds", default=EMBEDDERS, min=0.0, max=MAX_WINDOW_S, step=0.5, round=0.001,
        tooltip=(f"{tooltip} 0 = the embedder's own window, the length its file records (10 s for the official "
                 f"one); otherwise {shortest:g} to {MAX_WINDOW_S:g} s."))


@dataclass(frozen=True)
class Window:
    seconds: float
    embedders: bool

    def __str__(self) -> str:
        return f"{self.seconds:g} s" + (" (embedder's)" if self.embedders else "")


def window_in_use(model, window_seconds, shortest: float) -> Window:
    """The window a node runs with: the model's (the embedder's) for 0, else the value, at least `shortest`.

    The host checks 0 to `MAX_WINDOW_S`; the gap above 0 is checked here, at run time (a linked value never
    reaches `validate_inputs`, and naming the input there would turn off the host's own range checks)."""
    seconds = float(window_seconds)
    if seconds == EMBEDDERS:
        return Window(float(model.window_seconds), True)
    if seconds < shortest:
        raise ValueError(f"window_seconds {seconds:g} is too short: set 0 for the embedder's window "
                         f"({float(model.window_seconds):g} s) or at least {shortest:g} s.")
    return Window(seconds, False)
