"""Schedule size limits (audiotoken_core.limits): refusals name the numbers and what to lower; allowed sizes pass."""

from __future__ import annotations

import pytest
import torch

from audiotoken_core.limits import (MAX_FRAMES, MAX_KEYFRAMES, Footprint, ScheduleTooLarge, check_schedule, duration,
                                    fitting_frames)
from audiotoken_core.schedule import encode_schedule, plan_schedule

SD1 = Footprint(77, 768)


def test_an_hour_at_the_default_fps_is_refused_naming_frames_and_bytes():
    plan = plan_schedule(3600.0, fps=8.0)  # frames = 0: the whole recording
    assert (plan.n_frames, plan.n_keys) == (28_800, 7_201)
    with pytest.raises(ScheduleTooLarge) as err:
        check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1, free_bytes=None)
    text = str(err.value)
    assert "28,800 frames at 8 fps (1 h of video)" in text
    assert f"{MAX_FRAMES:,} frames (30 min at 8 fps" in text
    # 28,800 frames + 2 x 7,201 keyframes of 77 x 768 float32: 10.2 GB
    assert "10.2 GB (28,800 frames + 2 x 7,201 keyframes, each 77 x 768 values x 4 bytes)" in text
    assert "Set frames to 14,400 or fewer" in text and "lower fps" in text and "start_seconds" in text
    assert isinstance(err.value, ValueError)  # the host shows it as the node's error


def test_too_many_keyframes_says_which_hop_fits():
    plan = plan_schedule(3600.0, fps=0.5, hop_s=0.1)  # 1,800 frames but 35,981 keyframes
    assert plan.n_frames <= MAX_FRAMES < plan.n_keys
    with pytest.raises(ScheduleTooLarge, match=r"keyframes \(one every 0.1 s over 59 min 58 s\) is more than "
                                               r"8,000.*Raise hop_seconds to at least 0.45\b"):
        check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1)
    hop = plan_schedule(3600.0, fps=0.5, hop_s=0.45)
    assert hop.n_keys <= MAX_KEYFRAMES
    check_schedule(hop.n_frames, hop.n_keys, hop.fps, hop.hop_s, SD1)


def test_memory_check_uses_half_of_what_is_free_and_says_how_many_frames_fit():
    plan = plan_schedule(600.0, fps=8.0)  # 4,800 frames, 1,201 keyframes
    need = SD1.bytes(plan.n_frames, plan.n_keys)
    assert (plan.n_keys, need) == (1_201, (4_800 + 2 * 1_201) * 77 * 768 * 4)
    check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1, free_bytes=2 * need)  # exactly fits
    with pytest.raises(ScheduleTooLarge) as err:
        check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1, free_bytes=need)
    text = str(err.value)
    fit = fitting_frames(plan.n_frames, plan.n_keys, SD1, need // 2)
    assert 0 < fit < plan.n_frames and f"Set frames to {fit:,} or fewer" in text
    assert "1.7 GB" in text and "1.7 GB is free and at most half of it (0.9 GB)" in text and "more than this machine can hold" in text
    with pytest.raises(ScheduleTooLarge, match="Nothing of this schedule fits"):
        check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1, free_bytes=1000)


def test_estimates_say_at_least_and_bytes_follow_width_and_dtype():
    sdxl = Footprint(77, 2048, itemsize=2, key_copies=0, estimate=True)
    assert sdxl.bytes(10, 5) == 10 * 77 * 2048 * 2
    assert sdxl.describe(10, 5).startswith("at least 3 MB (10 frames, each 77 x 2048 values x 2 bytes)")


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (3600, 7500, 750, 600, 45.5, 0.125)] == \
        ["1 h", "2 h 5 min", "12 min 30 s", "10 min", "45.5 s", "0.125 s"]


def test_encode_schedule_checks_the_plan_before_resampling_or_beats():
    class NoBeats:  # any other use of the tokenizer would mean work was done before the check
        window_seconds = 10.0  # the plan's default window: the embedder's

        def __getattr__(self, name):
            raise AssertionError(f"tokenizer.{name} used before the size check")

    seen = []

    def refuse(plan):
        seen.append((plan.n_frames, plan.n_keys))
        check_schedule(plan.n_frames, plan.n_keys, plan.fps, plan.hop_s, SD1)

    # an hour at 44.1 kHz as a zero-stride view: its size costs nothing, and nothing may read it all
    hour = torch.zeros(1, 1, 1).expand(1, 2, 3600 * 44100)
    with pytest.raises(ScheduleTooLarge, match="28,800 frames"):
        encode_schedule(NoBeats(), hour, 44100, fps=8.0, check=refuse)
    assert seen == [(28_800, 7_201)]
