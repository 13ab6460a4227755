"""Waveform → audio tokens: the single path used by the ComfyUI nodes and the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from .audio import TARGET_RATE, count_windows, iter_windows, prepare_audio, take_window

MODES = ("first", "mean", "windows")
ProgressFn = Callable[[int, int], None]


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


class AudioTokenizer:
    """BEATs + Embedder. Runs on the device and dtype of the BEATs module."""

    def __init__(self, beats, embedder, beats_name: str = "audio encoder", embedder_name: str = "embedder"):
        check_compatible(beats, embedder, beats_name, embedder_name)
        self.beats = beats
        self.embedder = embedder
        self.layers = tuple(embedder.meta.layers)

    @property
    def device(self) -> torch.device:
        return next(self.beats.parameters()).device

    @property
    def window_seconds(self) -> float:
        return float(self.embedder.meta.window_seconds)

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

    def encode_windows(
        self,
        windows: Iterable[torch.Tensor],
        total: int | None = None,
        batch_windows: int = 8,
        progress: ProgressFn | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tokens for windows the caller already cut: `[N, n_tokens, D]` float32, one row per window, in order.

        `windows` yields equal-length 16 kHz `[W]` or `[b, W]` tensors, lazily if it likes, so a long schedule's
        windows never all exist at once. They are embedded `batch_windows` rows at a time; `progress(done, total)`
        is called after each chunk and may raise to interrupt (`total` defaults to the rows done so far).
        """
        return self.encode_windows_heard(windows, total, batch_windows, progress, heard=False).tokens

    @torch.no_grad()
    def encode_windows_heard(
        self,
        windows: Iterable[torch.Tensor],
        total: int | None = None,
        batch_windows: int = 8,
        progress: ProgressFn | None = None,
        heard: bool = True,
    ) -> "WindowTokens":
        """`encode_windows`, and with `heard` also what BEATs's AudioSet head hears in each window.

        The probabilities come from the same BEATs pass as the tokens (the head reads the last layer), so
        naming the sounds costs one small matrix product per window, not a second BEATs run. `heard` needs a
        checkpoint with the head (`beats.audioset_head()` says why when there is none).
        """
        if batch_windows < 1:
            raise ValueError("batch_windows must be >= 1")
        if heard:
            self.beats.audioset_head()  # a checkpoint without the head fails before any BEATs work
        chunk: list[torch.Tensor] = []
        parts: list[dict[str, torch.Tensor]] = []
        probs: list[torch.Tensor] = []
        done = 0

        def flush():
            nonlocal done
            if not chunk:
                return
            batch = torch.cat(chunk, dim=0)
            chunk.clear()
            outs = self._all_layers(batch)
            parts.append({n: t.float() for n, t in self.tokens_from_features(self._picked(outs)).items()})
            if heard:
                probs.append(self.beats.probs_from_last_layer(outs[-1], batch).float().cpu())
            done += batch.shape[0]
            if progress is not None:
                progress(done, done if total is None else total)

        for win in windows:
            chunk.append(win if win.ndim == 2 else win[None])
            if sum(c.shape[0] for c in chunk) >= batch_windows:
                flush()
        flush()
        if not parts:
            raise ValueError("no windows to encode")
        return WindowTokens({n: torch.cat([p[n] for p in parts], dim=0) for n in parts[0]},
                            torch.cat(probs) if heard else None)

    @torch.no_grad()
    def encode(
        self,
        waveform,
        sample_rate: int,
        offset_s: float = 0.0,
        duration_s: float | None = None,
        mode: str = "first",
        batch_windows: int = 8,
        progress: ProgressFn | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tokens keyed by CLIP name, each `[B', n_tokens, D]` float32 on the model's device.

        - `first`: the window at `offset_s` (short audio is tiled, as the official loader does); B' = B.
        - `mean`: mean of the tokens of every consecutive window from `offset_s`; B' = B.
        - `windows`: one token set per window, sound-major (sound 0's windows first); B' = B x windows.
        Windows are embedded `batch_windows` at a time, so memory stays bounded for hour-long recordings;
        `progress(done, total)` is called after each chunk and may raise to interrupt.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if batch_windows < 1:
            raise ValueError("batch_windows must be >= 1")
        duration_s = self.window_seconds if duration_s is None else float(duration_s)
        wave = prepare_audio(waveform, sample_rate)
        n_sounds = wave.shape[0]
        if mode == "first":
            windows = [take_window(wave, offset_s, duration_s)]
            total = 1
        else:
            total = count_windows(wave.shape[-1], duration_s, None, offset_s)
            windows = iter_windows(wave, duration_s, None, offset_s)

        per_window: list[dict[str, torch.Tensor]] = []
        running: dict[str, torch.Tensor] | None = None
        done = 0
        chunk: list[torch.Tensor] = []

        def flush():
            nonlocal running, done
            if not chunk:
                return
            k = len(chunk)
            # window-major stacking: row j*B + b is window j of sound b
            batch = torch.cat(chunk, dim=0)
            toks = {name: t.float() for name, t in self.tokens_from_features(self.features(batch)).items()}
            chunk.clear()
            if mode == "mean":
                sums = {name: t.view(k, n_sounds, *t.shape[1:]).sum(0) for name, t in toks.items()}
                running = sums if running is None else {n: running[n] + sums[n] for n in sums}
            else:
                per_window.append({n: t.view(k, n_sounds, *t.shape[1:]) for n, t in toks.items()})
            done += k
            if progress is not None:
                progress(done, total)

        for win in windows:
            chunk.append(win)
            if len(chunk) * n_sounds >= batch_windows:
                flush()
        flush()

        if mode == "mean":
            return {n: t / done for n, t in running.items()}
        stacked = {n: torch.cat([pw[n] for pw in per_window], dim=0) for n in per_window[0]}
        if mode == "first":
            return {n: t[0] for n, t in stacked.items()}
        # [W, B, n, D] -> [B * W, n, D], sound-major
        return {n: t.transpose(0, 1).reshape(-1, *t.shape[2:]) for n, t in stacked.items()}


__all__ = ["AudioTokenizer", "WindowTokens", "check_compatible", "MODES", "TARGET_RATE"]
