"""Scoring models loaded from local files: tiny random CLIP folders, a narrow Wav2CLIP checkpoint and the
pytorch-fid Inception architecture with random weights. The `write_*` builders are reused by the other
evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train.evaluate import encoders as enc
from train.evaluate.wav2clip_model import Wav2CLIP, architecture_from_state_dict

CLIP_DIM = 16  # tiny CLIP projection width == tiny Wav2CLIP output, as 512 == 512 for the real pair


def write_tiny_clip(folder, seed: int = 0, projection_dim: int = CLIP_DIM) -> Path:
    """A transformers CLIP folder (model, tokenizer, image processor) with random weights."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    from testkit.sd import write_tiny_tokenizer

    folder = Path(folder)
    write_tiny_tokenizer(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    vocab = len(tokenizer)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1,
        ),
        vision_config=dict(
            image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4,
        ),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(str(folder), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def write_tiny_wav2clip(path, seed: int = 0, width: int = 4, out_dim: int = CLIP_DIM) -> Path:
    """Wav2CLIP's architecture at 1/16 width, saved with the released checkpoint's key names."""
    torch.manual_seed(seed)
    model = Wav2CLIP(width=width, mlp_units=[width * 8, 32, out_dim])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def random_fid_inception_state(seed: int = 0) -> dict:
    """State dict of pytorch-fid's FID Inception (torchvision Inception3 + FID blocks), random weights."""
    import torchvision
    from pytorch_fid import inception as fi

    torch.manual_seed(seed)
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    net.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fi.FIDInceptionE_1(1280)
    net.Mixed_7c = fi.FIDInceptionE_2(2048)
    return net.state_dict()


class TinyPixelFeatures:
    """Stand-in for Inception in fast tests: 4x4 RGB thumbnails as 48-d features (same interface)."""

    name = "tiny-pixels"
    key = "tiny-pixels-v1"
    batch_size = 8

    def __init__(self):
        self.calls = 0

    def encode_images(self, images):
        self.calls += len(images)
        return np.stack([np.asarray(im.convert("RGB").resize((4, 4)), np.float32).ravel() / 255 for im in images])


def _picture(color, size=(40, 30)):
    from PIL import Image

    im = Image.new("RGB", size, color)
    im.paste((255 - color[0], 40, 90), (0, 0, size[0] // 2, size[1] // 3))
    return im


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return write_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_clip_folder_embeds_images_and_texts(tiny_clip):
    e = enc.ClipEncoder(tiny_clip, batch_size=2)
    ims = [_picture((200, 10, 10)), _picture((10, 200, 10), (64, 64)), _picture((200, 10, 10))]
    f = e.encode_images(ims)
    assert f.shape == (3, CLIP_DIM) and np.isfinite(f).all()
    assert np.allclose(f[0], f[2], atol=1e-5) and not np.allclose(f[0], f[1])
    t = e.encode_texts(["a photo of dog", "a photo of cat", "a photo of dog"])
    assert t.shape == (3, CLIP_DIM)
    assert np.allclose(t[0], t[2], atol=1e-5) and not np.allclose(t[0], t[1])
    assert e.key == enc.ClipEncoder(tiny_clip).key and e.key != e.text_key


def test_wav2clip_checkpoint_loads_and_is_batch_independent(tmp_path):
    path = write_tiny_wav2clip(tmp_path / "Wav2CLIP.pt")
    assert architecture_from_state_dict(torch.load(path))["mlp_units"] == [32, 32, CLIP_DIM]
    e = enc.Wav2ClipEncoder(path, batch_size=3, clip_seconds=1.0)
    stereo_44k = torch.randn(2, 30_000) * 0.1
    w = e.prepare(stereo_44k, 44_100)
    assert w.shape == (16_000,)  # resampled to 16 kHz, zero-padded to the 1 s window
    assert torch.all(w[-4_000:] == 0)
    waves = [torch.randn(16_000) * s for s in (0.05, 0.2, 0.5)]
    batched = e.encode_audio(waves)
    single = np.concatenate([e.encode_audio([w]) for w in waves])
    assert batched.shape == (3, CLIP_DIM)
    assert np.allclose(batched, single, atol=1e-5)  # per-clip normalisation: no batch leakage


def test_missing_models_name_the_file_and_the_source(tmp_path):
    with pytest.raises(enc.MissingModelError, match=r"nowhere.*openai/clip-vit-large-patch14"):
        enc.ClipEncoder(tmp_path / "nowhere", source=enc.CLIP_L14_SOURCE)
    with pytest.raises(enc.MissingModelError, match=r"Wav2CLIP\.pt.*lyrebird-wav2clip"):
        enc.Wav2ClipEncoder(tmp_path / "Wav2CLIP.pt")
    with pytest.raises(enc.MissingModelError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        enc.InceptionEncoder(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    (tmp_path / "emptyclip").mkdir()
    with pytest.raises(enc.MissingModelError, match="config.json"):
        enc.ClipEncoder(tmp_path / "emptyclip")


def test_wrong_checkpoints_are_refused_clearly(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"something.weight": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a Wav2CLIP checkpoint"):
        enc.Wav2ClipEncoder(bad)
    with pytest.raises(ValueError, match="not the pytorch-fid Inception weights"):
        enc.InceptionEncoder(bad)


def test_fid_inception_file_gives_2048_pool_features(tmp_path):
    path = tmp_path / enc.FID_WEIGHTS_NAME
    torch.save(random_fid_inception_state(), path)
    f = enc.InceptionEncoder(path).encode_images([_picture((30, 60, 200), (50, 31))])
    assert f.shape == (1, 2048) and np.isfinite(f).all()


def test_cache_keys_follow_weights_not_location(tiny_clip, tmp_path):
    import shutil

    other_seed = write_tiny_clip(tmp_path / "other", seed=5)  # same config and file sizes, other weights
    moved = Path(shutil.copytree(tiny_clip, tmp_path / "moved"))
    key = enc.ClipEncoder(tiny_clip).key
    assert enc.ClipEncoder(other_seed).key != key
    assert enc.ClipEncoder(moved).key == key
    a, b = write_tiny_wav2clip(tmp_path / "a.pt", seed=1), write_tiny_wav2clip(tmp_path / "b.pt", seed=2)
    assert enc.Wav2ClipEncoder(a).key != enc.Wav2ClipEncoder(b).key
