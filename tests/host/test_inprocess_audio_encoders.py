"""models/audio_encoders is shared with the host's own encoders: the pack lists only BEATs, names what any
other file is, and leaves the host's Audio Encoder Loader working with its wav2vec2 file (in-process)."""

from __future__ import annotations

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from host_assets import BEATS, BEATS_DIM, EMBEDDER  # noqa: E402
from inprocess import pack_module  # noqa: E402

WAV2VEC2 = "wav2vec2_base_fp16.safetensors"
JUNK = "half_download.safetensors"


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Only these files in models/audio_encoders and models/audiotoken, as a Wan S2V user's folder would hold."""
    pack_module("extension")  # imports the host and registers models/audiotoken
    import folder_paths
    from testkit.beats import write_tiny_official_beats
    from factories.embedder import write_tiny_official_embedder
    from factories.wav2vec2 import write_random_wav2vec2_base

    root = tmp_path_factory.mktemp("shared_audio_encoders")
    encoders, embedders = root / "audio_encoders", root / "audiotoken"
    with torch.random.fork_rng(devices=[]):
        write_tiny_official_beats(encoders / BEATS, layers=12, dim=BEATS_DIM, heads=4)
        write_random_wav2vec2_base(encoders / WAV2VEC2)
        write_tiny_official_embedder(embedders / EMBEDDER, in_dim=3 * BEATS_DIM, out_dim=768)
    (encoders / JUNK).write_bytes(b"\x00" * 64)
    saved = {key: folder_paths.folder_names_and_paths[key] for key in ("audio_encoders", "audiotoken")}
    for key, folder in (("audio_encoders", encoders), ("audiotoken", embedders)):
        folder_paths.folder_names_and_paths[key] = ([str(folder)], set(saved[key][1]))
    yield encoders
    folder_paths.folder_names_and_paths.update(saved)


def encoder_input(loader):
    """The audio_encoder_name entry exactly as /object_info serves it."""
    return loader.INPUT_TYPES()["required"]["audio_encoder_name"][1]


def test_only_beats_is_listed_and_the_rest_is_named(mixed_folder):
    import folder_paths

    loader = pack_module("model_loader").AudioTokenModelLoader
    assert folder_paths.get_filename_list("audio_encoders") == sorted([BEATS, WAV2VEC2, JUNK])
    entry = encoder_input(loader)
    assert entry["options"] == [BEATS]
    assert f"{WAV2VEC2} (wav2vec2, for ComfyUI's loader)" in entry["tooltip"]
    assert f"{JUNK} (unreadable)" in entry["tooltip"]


def test_foreign_file_is_a_clear_error_in_execution(mixed_folder):
    """Validation checks the embedder only (its answer lands on each input it takes); the foreign BEATs file
    is named when the loader runs, and is not in the list the host checks against."""
    loader = pack_module("model_loader").AudioTokenModelLoader
    assert loader.validate_inputs(embedder_name=EMBEDDER) is True
    with pytest.raises(ValueError) as err:
        loader.execute(EMBEDDER, WAV2VEC2, "auto")
    assert (f"'{WAV2VEC2}' in models/audio_encoders is a wav2vec2 audio encoder (base, 768 wide), which ComfyUI's "
            "own Audio Encoder Loader uses (Wan S2V). AudioToken needs a BEATs checkpoint") in str(err.value)
    with pytest.raises(ValueError, match="cannot read.*needs a BEATs checkpoint"):
        loader.execute(EMBEDDER, JUNK, "auto")
    model = loader.execute(EMBEDDER, BEATS, "auto")[0]
    assert model.encoder_name == BEATS


def test_host_audio_encoder_loader_still_runs_its_wav2vec2(mixed_folder):
    from comfy_extras.nodes_audio_encoder import AudioEncoderEncode, AudioEncoderLoader

    assert WAV2VEC2 in AudioEncoderLoader.INPUT_TYPES()["required"]["audio_encoder_name"][1]["options"]
    encoder = AudioEncoderLoader.execute(WAV2VEC2)[0]
    g = torch.Generator().manual_seed(0)
    sound = {"waveform": torch.randn(1, 2, 22050, generator=g) * 0.1, "sample_rate": 22050}  # 1 s stereo
    out = AudioEncoderEncode.execute(encoder, sound)[0]
    assert out["encoded_audio"].shape == (1, 49, 768)
    assert len(out["encoded_audio_all_layers"]) == 13 and out["audio_samples"] == 16000
    assert torch.isfinite(out["encoded_audio"]).all()
