"""Where each scoring model comes from, and the cheap checks that it is on disk.

* CLIP ViT-B/32 (AIS image side) and ViT-L/14 (IIS, AIC): a transformers folder (`config.json`, weights,
  tokenizer and `preprocessor_config.json`), e.g. a `huggingface-cli download` of openai/clip-vit-*.
* Wav2CLIP (AIS audio side): the released `Wav2CLIP.pt`, read by our copy of its architecture.
* Inception for FID: pytorch-fid's `InceptionV3` (2048-d final pool) with `pt_inception-2015-12-05-*.pth`.

Nothing here reaches a hub: a missing model stops with `MissingModelError`, naming the path and where the
file comes from. The checks run before generation, so a missing scorer fails in seconds, not hours.
"""

from __future__ import annotations

from pathlib import Path

from ..models import MissingModelError
from . import wav2clip_model

CLIP_B32_SOURCE = "openai/clip-vit-base-patch32"
CLIP_L14_SOURCE = "openai/clip-vit-large-patch14"
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME


def _missing(what: str, path, how: str) -> MissingModelError:
    return MissingModelError(f"{what} not found at {path}. {how}")


def clip_how(folder: Path, source: str) -> str:
    return (
        f"Point it at a local transformers folder of {source}, e.g. "
        f"`huggingface-cli download {source} --local-dir {folder}` on a machine with network access."
    )


def check_clip_folder(folder, source: str) -> Path:
    if folder is None:
        raise MissingModelError(f"no CLIP folder given for {source}. {clip_how(Path('models') / source.split('/')[-1], source)}")
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing(f"CLIP model folder ({source})", folder, clip_how(folder, source))
    if not (folder / "config.json").is_file():
        raise _missing(f"config.json of the CLIP folder ({source})", folder / "config.json", clip_how(folder, source))
    return folder


def _check_file(path, what: str, how: str) -> Path:
    if path is None:
        raise MissingModelError(f"no {what} given. {how}")
    path = Path(path)
    if not path.is_file():
        raise _missing(what, path, how)
    return path


def check_wav2clip_file(path) -> Path:
    how = (
        f"Download {wav2clip_model.CHECKPOINT_NAME} from {wav2clip_model.CHECKPOINT_URL} "
        "(the file the `wav2clip` package fetches) and pass its path with --wav2clip."
    )
    return _check_file(path, "Wav2CLIP checkpoint", how)


def check_inception_file(path) -> Path:
    how = f"Download {FID_WEIGHTS_NAME} from {FID_WEIGHTS_URL} (pytorch-fid's weights) and pass its path with --inception."
    return _check_file(path, "FID Inception weights", how)
