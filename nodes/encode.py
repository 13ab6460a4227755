"""AudioTokenEncode: AUDIO -> AUDIO_TOKENS through BEATs and the embedder."""

from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from ..audiotoken_core.pipeline import ENCODE_MODES
from . import host_compat
from .heard import can_hear, heard_rows
from .runtime import host_progress
from .schema import schema
from .types import CATEGORY, AudioTokenModelType, AudioTokens, AudioTokensType, combo_problem
from .window import EMBEDDERS, MAX_WINDOW_S, window_in_use, window_input

SHORTEST_WINDOW_S = 0.5
# A microphone that was muted, or a recording stopped before any sound, gives digital silence or the codec's
# noise floor (Opus leaves a few 1e-5). Nothing below -70 dBFS carries a sound BEATs could hear.
SILENT_PEAK = 10 ** (-70 / 20)


class AudioTokenEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenEncode",
            search_aliases=["sound", "audio to image", "sound to image", "microphone", "audio prompt",
                            "audio embedding", "BEATs"],
            display_name="AudioToken Encode",
            category=CATEGORY,
            description=("Turns audio into audio tokens. Any sample rate, channel count and batch; audio is "
                         "mixed to mono and resampled to 16 kHz. Clips shorter than the window are repeated."),
            inputs=[
                AudioTokenModelType.Input("audiotoken_model", tooltip="From AudioToken Model Loader."),
                io.Audio.Input("audio", tooltip="Audio, e.g. from Load Audio. A batch of B sounds gives B token sets."),
                io.Combo.Input("mode", options=list(ENCODE_MODES), default="first",
                               tooltip="first: one window from start_seconds. mean: average the tokens of every "
                                       "window (one set per sound). windows: one token set per window, as a "
                                       "batch (one image per window)."),
                io.Float.Input("start_seconds", default=0.0, min=0.0, max=86400.0, step=0.1, round=0.001,
                               tooltip="Where the first window starts, in seconds from the start of the audio."),
                window_input(SHORTEST_WINDOW_S,
                             "Window length in seconds; clips shorter than the window are repeated to fill it. "
                             f"At most {MAX_WINDOW_S:g} s: BEATs' memory grows with the square of the window. "
                             "For longer recordings use mode mean or windows, which go through them window by "
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
        return combo_problem("mode", mode, ENCODE_MODES) or True

    @classmethod
    def execute(cls, audiotoken_model, audio, mode="first", start_seconds=0.0,
                window_seconds=EMBEDDERS) -> io.NodeOutput:
        host_compat.require("encode")
        waveform, sample_rate = unpack_audio(audio)
        window = window_in_use(audiotoken_model, window_seconds, SHORTEST_WINDOW_S)
        # One BEATs pass gives the tokens and, with the AudioSet head, what was heard in each token row: words
        # for the text encoders no token fits (Text Encode's word route), and the preview.
        out = audiotoken_model.encode(waveform, sample_rate, offset_s=float(start_seconds),
                                      duration_s=window.seconds, mode=mode,
                                      heard=can_hear(audiotoken_model), progress=host_progress())
        heard, preview = heard_rows(audiotoken_model, out.heard)
        result = AudioTokens(out.tokens, info={
            "mode": mode, "start_seconds": float(start_seconds), "window_seconds": window.seconds,
            "sounds": int(waveform.shape[0]) if waveform.ndim == 3 else 1,
            "embedder": audiotoken_model.embedder_name, "audio_encoder": audiotoken_model.encoder_name,
        }, heard=heard)
        lines = [preview, f"window {window}", tiling_note(waveform, sample_rate, float(start_seconds), window.seconds)]
        return io.NodeOutput(result, result.batch_size, ui=ui.PreviewText("\n".join(x for x in lines if x)))


def unpack_audio(audio):
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError("audio must be a ComfyUI AUDIO value ({'waveform': [B, C, T], 'sample_rate': int}); "
                         "connect Load Audio or another audio node")
    waveform = audio["waveform"]
    if waveform.shape[-1] == 0:
        raise ValueError("The audio is empty (0 samples), so there is nothing to encode. Record again (allow the "
                         "microphone, and stop after the sound), or check the file or the trim settings upstream.")
    peak = peak_level(waveform)
    if peak < SILENT_PEAK:
        raise ValueError(f"The audio is silent (loudest sample {peak:.1e}, below -70 dBFS), so there is nothing to "
                         "hear. Check that the right microphone is chosen and not muted, then record again.")
    return waveform, int(audio["sample_rate"])


def peak_level(waveform) -> float:
    """The loudest sample on the float scale (1.0 = full scale), integer PCM included."""
    wave = torch.as_tensor(waveform).detach()
    if wave.dtype == torch.bool or wave.is_complex():
        return 1.0  # not audio samples: prepare_audio names the problem
    scale = 1.0 if wave.is_floating_point() else float(torch.iinfo(wave.dtype).max)
    peak = float(wave.abs().amax()) / scale
    return peak if peak == peak else 1.0  # NaN: prepare_audio names it


def tiling_note(waveform, sample_rate: int, start_seconds: float, window_seconds: float) -> str:
    """The preview's line for a sound shorter than the window: it is repeated to fill it, as a file's is."""
    seconds = waveform.shape[-1] / sample_rate - start_seconds
    if seconds <= 0 or seconds >= window_seconds:
        return ""
    return f"sound {seconds:.2f} s, shorter than the window: repeated to fill {window_seconds:g} s"
