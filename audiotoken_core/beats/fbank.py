"""Kaldi log-mel filterbank front end of BEATs, batched over clips of different lengths.

Plain torch: ComfyUI no longer installs torchaudio, so the mel banks torchaudio's ``compliance.kaldi`` built are
built here (``kaldi_mel_banks``), with the same float32 operations, and the features equal ``kaldi.fbank``'s.
"""

from __future__ import annotations

import math

import torch

from ..audio import TARGET_RATE as SAMPLE_RATE  # the one 16 kHz: the rate prepare_audio gives
NUM_MEL_BINS = 128
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
# Statistics of AudioSet fbanks used by the BEATs authors; the extra factor 2 on the std is theirs.
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
# BEATs was trained on int16-scaled audio, so float waveforms in [-1, 1] are scaled back up.
PCM_SCALE = 2**15

_WINDOW = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)  # 400 samples
_SHIFT = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)  # 160 samples
_FFT = 512  # kaldi's round_to_power_of_two: the 400-sample window is zero-padded to the next power of two
_PREEMPHASIS = 0.97
_LOW_FREQ = 20.0
# kaldi floors mel energies at float32 epsilon before the log (silence maps to log(eps), not -inf).
_LOG_FLOOR = torch.finfo(torch.float32).eps
# Frames transformed per step (across the batch). On CPU the steps are memory-bound passes of a few KB per
# frame: blocks of a few thousand frames keep the intermediates near cache (the whole 32 x 10 s batch in one
# block measured ~1.5-2x slower at one thread), while much smaller blocks pay the per-op threading overhead
# too often. On GPU the block only
# bounds the intermediates' memory. Frames are independent, so blocking does not change the numbers.
_BLOCK_FRAMES_CPU = 4096
_BLOCK_FRAMES_GPU = 65536

# The window and mel weights are built once per device (kaldi.fbank rebuilds both on every call, per clip).
_WINDOWS: dict[torch.device, torch.Tensor] = {}
_MEL_BANDS: dict[torch.device, list[tuple[int, int, torch.Tensor]]] = {}
_MELS_PER_BAND = 32


def num_frames(num_samples: int) -> int:
    """Frames kaldi produces with ``snip_edges=True`` (0 when the clip is shorter than one window)."""
    if num_samples < _WINDOW:
        return 0
    return 1 + (num_samples - _WINDOW) // _SHIFT


def num_tokens(num_samples: int, patch_size: int = 16) -> int:
    """Patch tokens BEATs yields for a clip: whole patches over (frames x mel bins), time-major."""
    return (num_frames(num_samples) // patch_size) * (NUM_MEL_BINS // patch_size)


def min_samples(patch_size: int = 16) -> int:
    """Shortest clip that yields at least one patch token."""
    return _WINDOW + (patch_size - 1) * _SHIFT


def valid_lengths(wave: torch.Tensor, padding_mask: torch.Tensor | None) -> list[int]:
    """Per-clip valid sample counts; padding must be a suffix so a clip is a contiguous prefix."""
    batch, total = wave.shape
    if padding_mask is None:
        return [total] * batch
    if padding_mask.shape != wave.shape:
        raise ValueError(f"padding_mask shape {tuple(padding_mask.shape)} does not match waveform {tuple(wave.shape)}")
    mask = padding_mask.to(device="cpu", dtype=torch.bool)
    lengths = (~mask).sum(dim=1)
    positions = torch.arange(total)
    expected = positions[None, :] >= lengths[:, None]
    if not torch.equal(mask, expected):
        raise ValueError("padding_mask must mark a trailing run of padded samples per clip (True = padding)")
    return [int(n) for n in lengths]


def kaldi_mel_banks(num_bins: int, fft_size: int, sample_rate: float, low_freq: float,
                    high_freq: float) -> torch.Tensor:
    """Kaldi's triangular mel filters ``[num_bins, fft_size // 2]`` (float32), without VTLN warping.

    Equal, bit for bit, to the banks of torchaudio's ``compliance.kaldi.get_mel_banks`` with warp factor 1 (what
    ``fbank`` uses by default): the same operations in the same order and dtype. Triangles are equally spaced
    on kaldi's mel scale (1127 ln(1 + f / 700)) between ``low_freq`` and ``high_freq`` (<= 0: offset from
    Nyquist), each spanning two of the ``num_bins + 1`` steps; FFT bin ``k`` sits at ``k * rate / fft_size``
    and the Nyquist bin is left out, as kaldi does.
    """
    if num_bins <= 3 or fft_size <= 0 or fft_size % 2:
        raise ValueError(f"need more than 3 mel bins and an even FFT size, got {num_bins} and {fft_size}")
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad mel range: low {low_freq} Hz, high {high_freq} Hz, Nyquist {nyquist} Hz")
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    # num_bins + 1 steps: the first and last triangles reach out to the range's ends.
    step = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins, dtype=torch.float32)[:, None]
    left = mel_low + index * step
    centre = mel_low + (index + 1.0) * step
    right = mel_low + (index + 2.0) * step
    bin_width = sample_rate / fft_size
    mel = (1127.0 * (1.0 + bin_width * torch.arange(fft_size // 2, dtype=torch.float32) / 700.0).log())[None]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    return torch.max(torch.zeros(1), torch.min(up, down))


def _povey_window(device: torch.device) -> torch.Tensor:
    """Kaldi's povey window (hann ** 0.85), built the way kaldi builds it so the values are bit-identical."""
    window = _WINDOWS.get(device)
    if window is None:
        window = torch.hann_window(_WINDOW, periodic=False, dtype=torch.float32, device=device).pow(0.85)
        _WINDOWS[device] = window
    return window


def _mel_bands(device: torch.device) -> list[tuple[int, int, torch.Tensor]]:
    """kaldi's mel matrix, split for a banded product: ``(first_bin, end_bin, weights[bins, mels])`` per group.

    kaldi multiplies the 257-bin power spectrum by the full ``[128, 257]`` matrix (its banks plus a zero column
    for the Nyquist bin), but each triangle spans only a few bins, so ~98% of it is zero. Groups of
    ``_MELS_PER_BAND`` consecutive mel bins multiply only the FFT bins they touch: ~4x fewer multiply-adds,
    and the matmul was the largest step on CPU. Products with the skipped zeros add nothing, so only the float32
    summation order can differ (~1e-8 relative).
    """
    bands = _MEL_BANDS.get(device)
    if bands is None:
        # [256 bins, 128 mels]; kaldi's zero Nyquist column never contributes
        weights = kaldi_mel_banks(NUM_MEL_BINS, _FFT, float(SAMPLE_RATE), _LOW_FREQ, 0.0).T
        bands = []
        for first_mel in range(0, NUM_MEL_BINS, _MELS_PER_BAND):
            group = weights[:, first_mel : first_mel + _MELS_PER_BAND]
            used = group.ne(0).any(dim=1).nonzero().flatten()
            lo, hi = int(used.min()), int(used.max()) + 1
            bands.append((lo, hi, group[lo:hi].contiguous().to(device)))
        _MEL_BANDS[device] = bands
    return bands


def _log_mel_into(frames: torch.Tensor, out: torch.Tensor) -> None:
    """Write normalised log-mel features of raw frames ``[B, n, 400]`` (PCM scale, float32) to ``out[B, n, 128]``.

    The steps and their operand order are kaldi.fbank's, so the float32 rounding matches it (apart from |X|^2
    and the banded mel product, below); they run batched and write into preallocated buffers to keep the
    passes over memory down.
    """
    # DC offset is removed per frame (remove_dc_offset), not per clip.
    centred = frames - frames.mean(dim=-1, keepdim=True)
    # The FFT input, with kaldi's zero padding from 400 to 512 samples already in place.
    padded = centred.new_empty(*centred.shape[:-1], _FFT)
    padded[..., _WINDOW:].zero_()
    emphasised = padded[..., :_WINDOW]
    # Pre-emphasis restarts in every frame: kaldi replicate-pads each frame, so the first sample's predecessor
    # is itself (x0 - 0.97 * x0), not the sample before the frame.
    torch.mul(centred[..., :-1], _PREEMPHASIS, out=emphasised[..., 1:])
    torch.mul(centred[..., :1], _PREEMPHASIS, out=emphasised[..., :1])
    torch.sub(centred, emphasised, out=emphasised)
    emphasised.mul_(_povey_window(frames.device))
    spectrum = torch.fft.rfft(padded)
    # use_power: |X|^2 as re^2 + im^2. kaldi takes abs() then squares; complex abs is a hypot, ~10x slower
    # on CPU than this, and the two differ by float32 rounding only (~1e-7 relative).
    power = spectrum.real.square().addcmul_(spectrum.imag, spectrum.imag)
    bands = _mel_bands(frames.device)
    mel = torch.cat([torch.matmul(power[..., lo:hi], weights) for lo, hi, weights in bands], dim=-1)
    mel.clamp_min_(_LOG_FLOOR).log_().sub_(FBANK_MEAN)
    torch.div(mel, 2 * FBANK_STD, out=out)


@torch.no_grad()
def compute_fbank(wave16k: torch.Tensor, lengths: list[int] | None = None) -> tuple[torch.Tensor, list[int]]:
    """Normalised fbank features ``[B, F, 128]`` (float32) and each clip's frame count.

    Equals ``torchaudio.compliance.kaldi.fbank`` (dither 0, povey window, 128 bins, BEATs normalisation) run on
    each clip's valid samples alone, but is computed for the whole batch at once. That is exact because with
    ``snip_edges`` a clip's frames lie wholly inside its valid samples and kaldi's DC removal and pre-emphasis
    work per frame: the clip's frames are the frames of the padded row that end before its length. Frames past
    a clip's end are zero.
    """
    if wave16k.dim() != 2:
        raise ValueError(f"expected a waveform batch [B, T], got shape {tuple(wave16k.shape)}")
    batch = wave16k.shape[0]
    if lengths is None:
        lengths = [wave16k.shape[1]] * batch
    if len(lengths) != batch or max(lengths, default=0) > wave16k.shape[1]:
        raise ValueError(f"lengths {lengths} do not fit a waveform batch of shape {tuple(wave16k.shape)}")
    frames = [num_frames(n) for n in lengths]
    if min(frames, default=0) == 0:
        raise ValueError(f"every clip needs at least {_WINDOW} samples at 16 kHz; lengths are {lengths}")
    most = max(frames)
    # BEATs' front end runs in float32: other dtypes are cast before scaling, as kaldi.fbank on the float32
    # clip would see them. Samples past the longest clip's last frame are never read, so they are not cast.
    wave = wave16k[:, : _WINDOW + (most - 1) * _SHIFT].to(torch.float32) * PCM_SCALE
    strided = wave.unfold(1, _WINDOW, _SHIFT)  # [B, most, 400], a view (snip_edges framing)
    out = wave.new_empty(batch, most, NUM_MEL_BINS)
    block = _BLOCK_FRAMES_CPU if wave.device.type == "cpu" else _BLOCK_FRAMES_GPU
    step = max(1, block // batch)
    for start in range(0, most, step):
        _log_mel_into(strided[:, start : start + step], out[:, start : start + step])
    # Shorter clips' trailing frames read padding; masked_fill (not a multiply) also clears NaN/inf there.
    if min(frames) < most:
        counts = torch.tensor(frames, device=wave.device)
        past_end = torch.arange(most, device=wave.device)[None, :] >= counts[:, None]
        out.masked_fill_(past_end[..., None], 0.0)
    return out, frames
