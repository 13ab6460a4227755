"""AudioTokenSchedule: AUDIO -> one token set per video frame (sound-driven prompt travel)."""

from __future__ import annotations

import torch
from comfy_api.latest import io, ui

from ..audiotoken_core.limits import MAX_FRAMES, MAX_KEYFRAMES
from ..audiotoken_core.schedule import ALIGNS, DEFAULT_HOP_S, ScheduledTokens
from . import host_compat
from .heard import can_hear, heard_over_time, name_rows, no_head_message
from .limits import check_schedule_size
from .encode import unpack_audio
from .runtime import host_progress
from .schema import schema
from .types import (CATEGORY, AudioTokenModelType, AudioTokens, AudioTokensType, HeardRows, KeyframeTokens,
                    combo_problem)
from .window import EMBEDDERS, Window, window_in_use, window_input

DEFAULT_FPS = 8.0
SHORTEST_WINDOW_S = 0.1


class AudioTokenSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenSchedule",
            search_aliases=["prompt travel", "video schedule", "sound to video", "audio reactive", "sound"],
            display_name="AudioToken Schedule",
            category=CATEGORY,
            description=("Turns a recording into one audio token set per video frame, for animation: frame f shows "
                         "the sound at start + f / fps. BEATs listens once per keyframe (every hop seconds, "
                         "whatever the fps) and frames in between are blended from their two keyframes."),
            inputs=[
                AudioTokenModelType.Input("audiotoken_model", tooltip="From AudioToken Model Loader."),
                io.Audio.Input("audio", tooltip="One recording, e.g. the soundtrack from Load Audio. Any sample "
                                                "rate and channel count; a batch of several sounds is refused."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=0.1, max=240.0, step=0.5, round=0.001,
                               tooltip="Frames per second of the video you will make. Use the same value in the "
                                       "node that saves or combines the frames."),
                io.Int.Input("frames", default=0, min=0, max=100000,
                             tooltip="How many frames. 0 = every frame from start_seconds to the end of the "
                                     "recording. More frames than the audio lasts is an error that says how "
                                     f"many fit. At most {MAX_FRAMES:,} frames ({MAX_KEYFRAMES:,} keyframes), "
                                     "and only as many as the memory holds: a longer schedule is refused "
                                     "before any work, with its size."),
                io.Float.Input("start_seconds", default=0.0, min=0.0, max=86400.0, step=0.1, round=0.001,
                               tooltip="Time in the recording of the first frame."),
                io.Float.Input("hop_seconds", default=DEFAULT_HOP_S, min=0.05, max=60.0, step=0.05, round=0.001,
                               tooltip="Seconds between keyframes, where BEATs listens. Smaller follows quick "
                                       "changes more closely and costs more (about duration / hop windows); "
                                       "the frame rate does not change the cost."),
                window_input(SHORTEST_WINDOW_S,
                             "How much sound each keyframe hears. Shorter windows react faster to a change in "
                             "the sound, but the embedder's tokens are the ones it was trained to give only at "
                             "its own window. Windows are slid inside the recording at its ends."),
                io.Combo.Input("align", options=list(ALIGNS), default=ALIGNS[0],
                               tooltip="centred: a keyframe hears window_seconds around its time (reacts a "
                                       "little before a sound starts). trailing: only the window_seconds "
                                       "before it (reacts after, like a listener)."),
                io.Float.Input("smoothing", default=0.0, min=0.0, max=60.0, step=0.05, round=0.001,
                               tooltip="Gaussian smoothing of the keyframe tokens over time, sigma in seconds. "
                                       "0 = off. More smoothing means less flicker between frames but a slower "
                                       "reaction to a change in the sound."),
            ],
            outputs=[
                AudioTokensType.Output(display_name="AUDIO_TOKENS",
                                       tooltip="One token set per frame (batch = frames), for AudioToken Text "
                                               "Encode; it also carries the keyframes, so Text Encode can encode "
                                               "once per keyframe and blend."),
                io.Int.Output(display_name="frames",
                              tooltip="The number of frames: connect it to Empty Latent Image's batch_size for "
                                      "one image per frame."),
                io.Float.Output(display_name="loudness", is_output_list=True,
                                tooltip="Loudness of each frame (RMS over one frame of sound), 0 = silent, 1 = "
                                        "the loudest frame, as a list of one FLOAT per frame. A node taking a "
                                        "single FLOAT runs once per frame with that frame's value; nodes that "
                                        "accept lists get the whole curve."),
            ],
        )

    @classmethod
    def validate_inputs(cls, align=None):
        # V3 combos are not checked by the host; only the inputs named here skip its min/max checks.
        return combo_problem("align", align, ALIGNS) or True

    @classmethod
    def execute(cls, audiotoken_model, audio, fps=DEFAULT_FPS, frames=0, start_seconds=0.0,
                hop_seconds=DEFAULT_HOP_S, window_seconds=EMBEDDERS, align=ALIGNS[0],
                smoothing=0.0) -> io.NodeOutput:
        host_compat.require("encode")
        waveform, sample_rate = unpack_audio(audio)
        window = window_in_use(audiotoken_model, window_seconds, SHORTEST_WINDOW_S)
        # Before BEATs: the conditioning Text Encode will make from this is at least one 77-position prompt
        # per frame, as wide as the embedder's heads together (768 for SD1.5, 2048 for SDXL).
        widths = list(audiotoken_model.widths.values())
        result = audiotoken_model.encode_schedule(waveform, sample_rate, fps=float(fps), n_frames=int(frames),
                                                  start_s=float(start_seconds), hop_s=float(hop_seconds),
                                                  window_s=window.seconds, align=align,
                                                  smoothing_s=float(smoothing), progress=host_progress(),
                                                  heard=can_hear(audiotoken_model),
                                                  check=lambda plan: check_schedule_size(plan, widths, True))
        # what BEATs heard at each keyframe, for Text Encode's word route (interpolated like the tokens)
        heard = None if result.heard is None else HeardRows(name_rows(audiotoken_model, result.heard)[0],
                                                            result.heard.float().cpu())
        key_words = None if heard is None else heard.words
        tokens = schedule_tokens(result, info={
            "mode": "schedule", "fps": float(fps), "frames": result.schedule.n_frames,
            "keyframes": result.schedule.n_keys, "start_seconds": float(start_seconds),
            "hop_seconds": float(hop_seconds), "window_seconds": window.seconds, "align": align,
            "smoothing_seconds": float(smoothing), "sounds": 1,
            "embedder": audiotoken_model.embedder_name, "audio_encoder": audiotoken_model.encoder_name,
        }, heard=heard)
        preview = summary(result, float(start_seconds), float(smoothing), window)
        preview += ("\nHeard:\n" + heard_over_time(key_words, result.schedule.key_times) if key_words else
                    "\n" + no_head_message(audiotoken_model))
        return io.NodeOutput(tokens, tokens.batch_size, result.loudness.tolist(), ui=ui.PreviewText(preview))


def schedule_tokens(result: ScheduledTokens, info: dict, heard: HeardRows | None = None) -> AudioTokens:
    """Per-frame AudioTokens that also carry their keyframes (float32, CPU, as every AUDIO_TOKENS value)."""
    keys = {name: t.detach().to("cpu", torch.float32) for name, t in result.keyframes.items()}
    per_frame = {name: result.schedule.interpolate(t) for name, t in keys.items()}
    return AudioTokens(per_frame, info=info, keyframes=KeyframeTokens(keys, result.schedule), heard=heard)


def summary(result: ScheduledTokens, start_s: float, smoothing_s: float, window: Window) -> str:
    s = result.schedule
    smoothing = f", smoothed over {smoothing_s:g} s" if smoothing_s > 0 else ""
    return (f"{s.n_frames} frames at {s.fps:g} fps ({s.n_frames / s.fps:.2f} s from {start_s:g} s); "
            f"{s.n_keys} keyframes every {s.hop_s:g} s, {s.align} windows of {window}{smoothing}")
