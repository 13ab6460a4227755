"""The host's numbers for core's schedule size check (`audiotoken_core.limits`), for Schedule and Text Encode."""

from __future__ import annotations

import comfy.model_management as mm

from ..audiotoken_core.limits import PROMPT_POSITIONS, Footprint, check_schedule


def conditioning_free_bytes() -> int:
    """Free bytes where the host keeps conditionings: its intermediate device (the CPU's RAM unless the host
    runs with --gpu-only, then the GPU's)."""
    return int(mm.get_free_memory(mm.intermediate_device()))


def check_schedule_size(schedule, widths: list[int], estimate: bool) -> None:
    """Refuses (`ScheduleTooLarge`) a frame schedule whose conditioning, one `PROMPT_POSITIONS`-long prompt of
    `sum(widths)` float32 values per frame and keyframe, would not fit, or that is beyond a sane length."""
    _check(schedule, Footprint(PROMPT_POSITIONS, sum(widths), estimate=estimate))


def check_keyed_conditioning(schedule, keyed) -> None:
    """The exact check, once the keyframes are encoded and before they are spread over the frames: each frame
    gets a row of the shape and dtype `keyed` ([keyframes, positions, width]) has. The text encoder decides
    that shape (Flux's T5 sequence is 256 or more positions of 4096, where the estimate assumed 77 of the
    encoders' widths side by side), so only now is the size known."""
    _check(schedule, Footprint(keyed.shape[1], keyed.shape[2], itemsize=keyed.element_size(), key_copies=1))


def _check(schedule, footprint: Footprint) -> None:
    check_schedule(schedule.n_frames, schedule.n_keys, schedule.fps, schedule.hop_s, footprint,
                   conditioning_free_bytes(), what="the conditioning for them")
