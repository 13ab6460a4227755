"""AudioTokenEncode: AUDIO -> AUDIO_TOKENS through BEATs and the embedder."""

from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from ..audiotoken_core.pipeline import MODES
from . import host_compat
from .progress import host_progress
from .heard import heard_words
from .types import CATEGORY, AudioTokenModelType, AudioTokens, AudioTokensType, combo_problem

DEFAULT_WINDOW_S = 10.0
# BEATs attention memory grows with the square of the window (its position bias and scores are
# [heads, tokens, tokens], 50 tokens a second): a CPU host with the full-size model peaks at 1.5 GB RSS at
# 30 s, 2.2 GB at 60 s, 5.1 GB at 120 s, and 600 s would need about 100 GB (docs/benchmarks.md). BEATs and
# the embedder work on 10 s AudioSet clips and BEATs' relative positions stop at 16 s, so longer sounds
# belong to mode mean/windows.
MAX_WINDOW_S = 30.0
# Rows x window² (s²) one BEATs pass may hold: 8 windows of 10 s. Longer windows run fewer rows per pass,
# down to one, and the sounds of a large AUDIO batch are split to fit.
MAX_ROWS = 8  # the pipeline's default batch_windows: windows of 10 s or less run exactly as before
ROW_BUDGET_S2 = MAX_ROWS * DEFAULT_WINDOW_S ** 2


class AudioTokenEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AudioTokenEncode",
            display_name="AudioToken Encode",
            category=CATEGORY,
            description=("Turns audio into audio tokens. Any sample rate, channel count and batch; audio is "
                         "mixed to mono and resampled to 16 kHz. Clips shorter than the window are repeated."),
            inputs=[
                AudioTokenModelType.Input("audiotoken_model", tooltip="From AudioToken Model Loader."),
                io.Audio.Input("audio", tooltip="Audio, e.g. from Load Audio. A batch of B sounds gives B token sets."),
                io.Combo.Input("mode", options=list(MODES), default="first",
                               tooltip="first: one window from start_seconds. mean: average the tokens of every "
                                       "window (one set per sound). windows: one token set per window, as a "
                                       "batch (one image per window)."),
                io.Float.Input("start_seconds", default=0.0, min=0.0, max=86400.0, step=0.1, round=0.001,
                               tooltip="Where the first window starts, in seconds from the start of the audio."),
                io.Float.Input("window_seconds", default=DEFAULT_WINDOW_S, min=0.5, max=MAX_WINDOW_S, step=0.5,
                               round=0.001,
                               tooltip="Window length in seconds. 10 s is what BEATs and the official embedder "
                                       f"work on; shorter clips are repeated to fill it. At most {MAX_WINDOW_S:g} "
                                       "s: BEATs' memory grows with the square of the window. For longer "
                                       "recordings use mode mean or windows, which go through them window by "
                                       "window."),
            ],
            outputs=[
                AudioTokensType.Output(display_name="AUDIO_TOKENS",
                                       tooltip="Token vectors, one set per sound (per window in 'windows' mode)."),
                io.Int.Output(display_name="count",
                              tooltip="How many token sets came out: wire it to Empty Latent Image's batch_size "
                                      "to get one image per sound or window."),
            ],
        )

    @classmethod
    def validate_inputs(cls, mode=None):
        # Only the inputs named here skip the host's min/max checks (a **kwargs signature would skip them all).
        return combo_problem("mode", mode, MODES) or True

    @classmethod
    def execute(cls, audiotoken_model, audio, mode="first", start_seconds=0.0,
                window_seconds=DEFAULT_WINDOW_S) -> io.NodeOutput:
        host_compat.require("encode")
        waveform, sample_rate = unpack_audio(audio)
        progress = host_progress()

        tokens = _encode_in_bounded_passes(audiotoken_model, waveform, sample_rate, progress,
                                           offset_s=float(start_seconds), duration_s=float(window_seconds),
                                           mode=mode)
        rows = next(iter(tokens.values())).shape[0]
        # Words for the text encoders no token fits (Text Encode's word route), and the preview.
        words, heard = heard_words(audiotoken_model, waveform, sample_rate, mode, float(start_seconds),
                                   float(window_seconds), rows, rows_per_pass(window_seconds))
        result = AudioTokens(tokens, info={
            "mode": mode, "start_seconds": float(start_seconds), "window_seconds": float(window_seconds),
            "sounds": int(waveform.shape[0]) if waveform.ndim == 3 else 1,
            "embedder": audiotoken_model.embedder_name, "audio_encoder": audiotoken_model.encoder_name,
            **({"words": words} if words else {}),
        })
        return io.NodeOutput(result, result.batch_size, ui=ui.PreviewText(heard))


def rows_per_pass(window_seconds: float) -> int:
    """How many windows BEATs may run at once for this window length (at least one)."""
    return max(1, min(MAX_ROWS, int(ROW_BUDGET_S2 // float(window_seconds) ** 2)))


def _encode_in_bounded_passes(model, waveform, sample_rate, progress, duration_s, **kwargs):
    """model.encode over groups of sounds, so that no BEATs pass holds more than rows_per_pass() rows.

    Every mode returns sound-major rows, so concatenating the groups gives what one call would.
    """
    rows = rows_per_pass(duration_s)
    groups = waveform.split(rows) if waveform.ndim == 3 else (waveform,)
    parts = []
    for index, group in enumerate(groups):
        sounds = group.shape[0] if group.ndim == 3 else 1

        def report(done, total, index=index):
            progress(index * total + done, len(groups) * total)

        # The pipeline runs a pass once windows x sounds reaches batch_windows; this keeps that at most `rows`.
        parts.append(model.encode(group, sample_rate, duration_s=duration_s, batch_windows=rows - sounds + 1,
                                  progress=report, **kwargs))
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


def unpack_audio(audio):
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError("audio must be a ComfyUI AUDIO value ({'waveform': [B, C, T], 'sample_rate': int}); "
                         "connect Load Audio or another audio node")
    waveform = audio["waveform"]
    if waveform.shape[-1] == 0:
        raise ValueError("The audio is empty (0 samples), so there is nothing to encode. Check the file or "
                         "the trim settings upstream.")
    return waveform, int(audio["sample_rate"])
