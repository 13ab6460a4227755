"""Wav2CLIP's audio encoder (ResNet-18 on a log spectrogram + MLP into CLIP ViT-B/32 image space).

Re-implemented from the `wav2clip` 0.1.0 package (descriptinc/lyrebird-wav2clip, MIT) because that
package imports librosa at module level, which drags numba, llvmlite and scikit-learn into the venv for a
model that needs none of them. Parameter names equal the package's, so its released checkpoint
`Wav2CLIP.pt` loads unchanged: `audio_encoder.*` is the ResNet, `audio_transform.*` the MLP.

One deliberate difference: the package normalises the log spectrogram with the mean and std of the
whole batch, so an embedding depends on which other clips share its batch. Here each clip is normalised
on its own, which equals the package's documented one-clip-at-a-time use (`embed_audio` on one array)
while still allowing batches.
"""

from __future__ import annotations

import torch
from torch import nn

CHECKPOINT_NAME = "Wav2CLIP.pt"
CHECKPOINT_URL = "https://github.com/descriptinc/lyrebird-wav2clip/releases/download/v0.1.0-alpha/Wav2CLIP.pt"
# Wav2CLIP was distilled on VGGSound clips resampled to 16 kHz, 10 s long (its pre_training/dataset.py).
SAMPLE_RATE = 16_000
CLIP_SECONDS = 10.0


class Spectrogram(nn.Module):
    """Power spectrogram ``[..., 257, frames]``, the package's ``torchaudio.transforms.Spectrogram(n_fft=512,
    hop_length=353)`` in plain torch (torchaudio is no longer installed with ComfyUI).

    torchaudio's defaults, kept: periodic Hann window over the whole FFT, centred frames with reflect padding,
    no normalisation, ``|X| ** 2`` as abs then pow (so the rounding is the same). The window stays a buffer named
    ``window`` because the released checkpoint carries ``audio_encoder.spectrogram.window``.
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 353):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        shape = wave.shape
        spec = torch.stft(
            wave.reshape(-1, shape[-1]), self.n_fft, hop_length=self.hop_length, win_length=self.n_fft,
            window=self.window, center=True, pad_mode="reflect", normalized=False, onesided=True,
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:]).abs().pow(2.0)


class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class AudioResNet(nn.Module):
    """ResNet-18 over a one-channel log-power spectrogram (n_fft 512, hop 353), average-pooled."""

    def __init__(self, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.spectrogram = Spectrogram(n_fft=512, hop_length=353)
        self.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = width
        for i, n in enumerate(blocks):
            planes = width * 2**i
            layer = [BasicBlock(inplanes, planes, stride=1 if i == 0 else 2)]
            layer += [BasicBlock(planes, planes) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.n_layers = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_dim = inplanes

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = torch.log(self.spectrogram(wave.unsqueeze(1)) + 1e-7)
        dims = tuple(range(1, x.ndim))
        # torch.std is the unbiased estimate, as in the package.
        x = (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + 1e-9)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.avgpool(x).flatten(1)


class MLPTransform(nn.Module):
    """Linear-ReLU-Dropout-...-Linear; key names `sequential.{0,3,...}` as in the package."""

    def __init__(self, units: list[int], dropout: float = 0.1):
        super().__init__()
        seq: list[nn.Module] = []
        for u0, u1 in zip(units[:-1], units[1:]):
            seq += [nn.Linear(u0, u1), nn.ReLU(), nn.Dropout(dropout)]
        self.sequential = nn.Sequential(*seq[:-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class Wav2CLIP(nn.Module):
    """Audio `[B, T]` float at `SAMPLE_RATE` -> embedding `[B, D]` (D = 512 for the released model)."""

    def __init__(self, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2), mlp_units: list[int] | None = None):
        super().__init__()
        self.audio_encoder = AudioResNet(width, blocks)
        units = mlp_units if mlp_units is not None else [self.audio_encoder.out_dim] * 3
        self.audio_transform = MLPTransform(units) if units else None
        self.out_dim = units[-1] if units else self.audio_encoder.out_dim

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.audio_encoder(wave)
        return self.audio_transform(x) if self.audio_transform is not None else x


def architecture_from_state_dict(state: dict[str, torch.Tensor]) -> dict:
    """Width, blocks per stage and MLP units read off the checkpoint's shapes, so the same loader serves the
    released ResNet-18 and the narrow random models the tests write."""
    if "audio_encoder.conv1.weight" not in state:
        raise ValueError("not a Wav2CLIP checkpoint: no 'audio_encoder.conv1.weight' key")
    width = int(state["audio_encoder.conv1.weight"].shape[0])
    blocks = []
    stage = 1
    while any(k.startswith(f"audio_encoder.layer{stage}.") for k in state):
        idx = {int(k.split(".")[2]) for k in state if k.startswith(f"audio_encoder.layer{stage}.")}
        blocks.append(max(idx) + 1)
        stage += 1
    linear = sorted(
        (int(k.split(".")[2]), v) for k, v in state.items() if k.startswith("audio_transform.sequential.") and k.endswith(".weight")
    )
    units = [int(linear[0][1].shape[1])] + [int(w.shape[0]) for _, w in linear] if linear else []
    return {"width": width, "blocks": tuple(blocks), "mlp_units": units}


def wav2clip_from_state_dict(state: dict[str, torch.Tensor]) -> Wav2CLIP:
    arch = architecture_from_state_dict(state)
    model = Wav2CLIP(arch["width"], arch["blocks"], arch["mlp_units"])
    wanted = {k: v for k, v in state.items() if k.startswith(("audio_encoder.", "audio_transform."))}
    missing, unexpected = model.load_state_dict(wanted, strict=False)
    # The spectrogram window is a buffer the package saves too; recomputing it is harmless if absent.
    missing = [k for k in missing if k != "audio_encoder.spectrogram.window"]
    if missing or unexpected:
        raise ValueError(f"Wav2CLIP checkpoint does not match the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()
