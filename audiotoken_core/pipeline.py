"""Waveform → audio tokens, and what BEATs heard in the same pass: the one path of the nodes and the trainer.

`AudioTokenizer.encode` is the entry: it cuts the windows (`audio.py`'s one rule: tiled short clips and tails),
runs them through `encode_windows` (the one chunking loop, which bounds the rows of every BEATs pass) and
folds the rows into what the mode asks for. Callers that cut their own windows (a frame schedule) call
`encode_windows` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from .audio import TARGET_RATE, WINDOW_SECONDS, count_windows, iter_windows, prepare_audio, seconds_to_samples, \
    take_window

ENCODE_MODES = ("first", "mean", "windows")
ProgressFn = Callable[[int, int], None]
_Pass = tuple[dict[str, torch.Tensor], "torch.Tensor | None"]  # one BEATs pass: tokens, probabilities
# BEATs attention memory grows with the square of the window (its position bias and scores are
# [heads, tokens, tokens], 50 tokens a second), so a pass holds at most rows x window² = 8 windows of 10 s:
# windows of 10 s or less run 8 rows a pass, longer ones fewer, down to one (docs/benchmarks.md).
MAX_ROWS = 8
ROW_BUDGET_S2 = MAX_ROWS * WINDOW_SECONDS ** 2


def rows_per_pass(window_s: float) -> int:
    """How many windows of this length one BEATs pass may hold (at least one)."""
    return max(1, min(MAX_ROWS, int(ROW_BUDGET_S2 // float(window_s) ** 2)))


def check_compatible(beats, embedder, beats_name: str = "audio encoder", embedder_name: str = "embedder") -> None:
    """Raise ValueError naming both files when the embedder cannot read this encoder's features."""
    layers = tuple(embedder.meta.layers)
    need = embedder.in_dim
    have = beats.embed_dim * len(layers)
    if max(layers) > beats.num_layers or min(layers) < 1:
        raise ValueError(
            f"{embedder_name} reads encoder layers {list(layers)} but {beats_name} has {beats.num_layers} layers"
        )
    if have != need:
        raise ValueError(
            f"{embedder_name} expects {need}-wide features but {beats_name} gives {beats.embed_dim} x "
            f"{len(layers)} layers = {have}; pick the audio encoder this embedder was trained with "
            f"({embedder.meta.audio_encoder})"
        )


@dataclass(frozen=True)
class WindowTokens:
    """Tokens `{clip: [N, n_tokens, D]}` of N windows and, when asked for, `heard [N, C]`: AudioSet probabilities."""

    tokens: dict[str, torch.Tensor]
    heard: torch.Tensor | None


@dataclass(frozen=True)
class Encoded:
    """What `AudioTokenizer.encode` gives, R rows (one per sound, or per window in mode windows):

    - `tokens {clip: [R, n_tokens, D]}` float32 on the model's device (empty when there is no embedder);
    - `heard [R, C]` float32 CPU AudioSet probabilities from the same BEATs pass (mode mean: their mean over
      the sound's windows), or None when not asked for;
    - `spans[r] = (sound index, start s, end s)`: the stretch of real sound row r comes from.
    """

    tokens: dict[str, torch.Tensor]
    heard: torch.Tensor | None
    spans: list[tuple[int, float, float]]


class AudioTokenizer:
    """BEATs + Embedder. Runs on the device and dtype of the BEATs module.

    Without an embedder it only hears: `encode(..., heard=True)` gives the AudioSet probabilities, no tokens.
    """

    def __init__(self, beats, embedder=None, beats_name: str = "audio encoder", embedder_name: str = "embedder"):
        if embedder is not None:
            check_compatible(beats, embedder, beats_name, embedder_name)
        self.beats = beats
        self.embedder = embedder
        self.layers = tuple(embedder.meta.layers) if embedder is not None else ()

    @property
    def device(self) -> torch.device:
        return next(self.beats.parameters()).device

    @property
    def window_seconds(self) -> float:
        """The default window: the one the embedder records for its tokens (`audio.WINDOW_SECONDS` without one)."""
        return WINDOW_SECONDS if self.embedder is None else float(self.embedder.meta.window_seconds)

    @property
    def widths(self) -> dict[str, int]:
        """`{head: width}` of the tokens it gives (empty without an embedder)."""
        return {} if self.embedder is None else dict(self.embedder.widths)

    @torch.no_grad()
    def features(self, wave16k: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`[B, N, encoder_width * len(layers)]`: the frozen work, cached by the trainer."""
        return self._picked(self._all_layers(wave16k, padding_mask))

    def _all_layers(self, wave16k: torch.Tensor, padding_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        return self.beats.extract_layers(wave16k.to(self.device, dtype=torch.float32), padding_mask=padding_mask)

    def _picked(self, outs: list[torch.Tensor]) -> torch.Tensor:
        dtype = next(self.beats.parameters()).dtype
        return torch.cat([outs[i - 1] for i in self.layers], dim=-1).to(dtype)

    def tokens_from_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        param = next(self.embedder.parameters())
        return self.embedder.forward_dict(feats.to(param.device, param.dtype))

    @torch.no_grad()
    def encode(
        self,
        waveform,
        sample_rate: int,
        offset_s: float = 0.0,
        duration_s: float | None = None,
        mode: str = "first",
        heard: bool = False,
        batch_windows: int | None = None,
        progress: ProgressFn | None = None,
    ) -> Encoded:
        """Tokens of a waveform (anything `prepare_audio` takes) and, with `heard`, what BEATs heard, one pass.

        - `first`: the window at `offset_s` (short audio is tiled, as the official loader does); R = B.
        - `mean`: mean over every consecutive window from `offset_s` (a tail is tiled, `audio.iter_windows`);
          R = B.
        - `windows`: one row per window, sound-major (sound 0's windows first); R = B x windows.
        At most `batch_windows` rows (default `rows_per_pass(duration_s)`) share a BEATs pass, sounds of a
        batch split across passes as needed, so memory stays bounded for any batch and hour-long recordings;
        `progress(rows done, rows)` is called after each pass and may raise to interrupt. `heard` needs a
        checkpoint with the AudioSet head (`beats.head_problem()` says why when there is none).
        """
        if mode not in ENCODE_MODES:
            raise ValueError(f"mode must be one of {ENCODE_MODES}, got {mode!r}")
        duration_s = self.window_seconds if duration_s is None else float(duration_s)
        wave = prepare_audio(waveform, sample_rate)
        n_sounds, length = wave.shape
        if mode == "first":
            windows, n_windows = [take_window(wave, offset_s, duration_s)], 1
        else:
            n_windows = count_windows(length, duration_s, None, offset_s)
            windows = iter_windows(wave, duration_s, None, offset_s)
        starts = [seconds_to_samples(offset_s) + j * seconds_to_samples(duration_s) for j in range(n_windows)]
        bounds = [(a / TARGET_RATE, min(a + seconds_to_samples(duration_s), length) / TARGET_RATE) for a in starts]

        # Rows arrive window-major (row j * B + b is window j of sound b), as the windows are cut.
        total = n_windows * n_sounds
        if mode == "mean":
            tokens, probs = self._sums_per_sound(windows, n_sounds, total, batch_windows, progress, heard)
            return Encoded({n: t / n_windows for n, t in tokens.items()},
                           None if probs is None else probs / n_windows,
                           [(b, bounds[0][0], bounds[-1][1]) for b in range(n_sounds)])

        def sound_major(t: torch.Tensor) -> torch.Tensor:  # [W * B, ...] -> [B * W, ...]
            return t.view(n_windows, n_sounds, *t.shape[1:]).transpose(0, 1).reshape(-1, *t.shape[1:])

        rows = self.encode_windows(windows, total, batch_windows, progress, heard)
        spans = [(b, *bounds[j]) for b in range(n_sounds) for j in range(n_windows)]
        return Encoded({n: sound_major(t) for n, t in rows.tokens.items()},
                       None if rows.heard is None else sound_major(rows.heard), spans)

    def _sums_per_sound(self, windows, n_sounds: int, total: int, batch_windows, progress, heard):
        """Running sums over window-major rows, per sound, so an hour of windows never piles up."""
        sums: dict[str, torch.Tensor] = {}
        heard_sum = None
        row = 0
        for toks, prob in self._passes(windows, total, batch_windows, progress, heard):
            rows = next(iter(toks.values())).shape[0] if toks else prob.shape[0]
            sound = torch.arange(row, row + rows) % n_sounds
            for name, t in toks.items():
                if name not in sums:
                    sums[name] = t.new_zeros(n_sounds, *t.shape[1:])
                sums[name].index_add_(0, sound.to(t.device), t)
            if prob is not None:
                heard_sum = prob.new_zeros(n_sounds, prob.shape[1]) if heard_sum is None else heard_sum
                heard_sum.index_add_(0, sound, prob)
            row += rows
        return sums, heard_sum

    @torch.no_grad()
    def encode_windows(
        self,
        windows: Iterable[torch.Tensor],
        total: int | None = None,
        batch_windows: int | None = None,
        progress: ProgressFn | None = None,
        heard: bool = False,
    ) -> WindowTokens:
        """Tokens (and with `heard` what BEATs heard) of windows the caller already cut, one row per window.

        `windows` yields equal-length 16 kHz `[W]` or `[b, W]` tensors, lazily if it likes, so a long schedule's
        windows never all exist at once. `batch_windows`, `progress` and `heard` mean what they mean for
        `encode` (`total` defaults to the rows done so far).
        """
        tokens: dict[str, list[torch.Tensor]] = {}
        probs: list[torch.Tensor] = []
        for toks, prob in self._passes(windows, total, batch_windows, progress, heard):
            for name, t in toks.items():
                tokens.setdefault(name, []).append(t)
            if prob is not None:
                probs.append(prob)
        return WindowTokens({n: torch.cat(parts) for n, parts in tokens.items()}, torch.cat(probs) if heard else None)

    def _passes(self, windows: Iterable[torch.Tensor], total: int | None, batch_windows: int | None,
                progress: ProgressFn | None, heard: bool) -> Iterator[_Pass]:
        """The one chunking loop: `(tokens, probs)` of each BEATs pass over the rows of `windows`, in order.

        The probabilities come from the pass that makes the tokens (the head reads the last layer), so naming
        the sounds costs one small matrix product per row, not a second BEATs run.
        """
        if batch_windows is not None and batch_windows < 1:
            raise ValueError("batch_windows must be >= 1")
        if heard:
            self.beats.audioset_head()  # a checkpoint without the head fails before any BEATs work
        if self.embedder is None and not heard:
            raise ValueError("without an embedder there are no tokens: ask for what BEATs heard (heard=True)")
        done = 0
        for batch in _row_batches(windows, batch_windows):
            outs = self._all_layers(batch)
            toks = {} if self.embedder is None else \
                {n: t.float() for n, t in self.tokens_from_features(self._picked(outs)).items()}
            prob = self.beats.probs_from_last_layer(outs[-1], batch).float().cpu() if heard else None
            done += batch.shape[0]
            if progress is not None:
                progress(done, done if total is None else total)
            yield toks, prob
        if done == 0:
            raise ValueError("no windows to encode")


def _row_batches(windows: Iterable[torch.Tensor], batch_windows: int | None) -> Iterator[torch.Tensor]:
    """`[rows, W]` batches of the rows of `windows` in order, each at most `batch_windows` rows (default:
    `rows_per_pass` of the window length); a window of several sounds is split where a batch fills."""
    pending: list[torch.Tensor] = []
    count = 0
    for win in windows:
        win = win if win.ndim == 2 else win[None]
        limit = batch_windows or rows_per_pass(win.shape[-1] / TARGET_RATE)
        while win.shape[0]:
            take = min(limit - count, win.shape[0])
            pending.append(win[:take])
            win, count = win[take:], count + take
            if count >= limit:
                yield torch.cat(pending)
                pending, count = [], 0
    if pending:
        yield torch.cat(pending)


__all__ = ["AudioTokenizer", "ENCODE_MODES", "Encoded", "WindowTokens", "check_compatible", "rows_per_pass",
           "TARGET_RATE"]
