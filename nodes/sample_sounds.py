"""The pack's sample sounds (sample_sounds/*.wav), put where core Load Audio looks for files.

Load Audio lists only the files directly in ComfyUI's input folder (`os.listdir` of
`folder_paths.get_input_directory()`, no subfolders). An annotated name (`x.wav [input]`) can name only the
input, output or temp folders. So the only way a template's `dog_bark.wav` can load with no manual step is
a copy in the input folder. It is made at pack load, only for names that are absent, and a user's file of
the same name is never replaced.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import folder_paths

SOUNDS_DIR = Path(__file__).resolve().parent.parent / "sample_sounds"

log = logging.getLogger(__name__)


def shipped() -> list[Path]:
    return sorted(SOUNDS_DIR.glob("*.wav"))


def install_sample_sounds() -> list[str]:
    """Copy each shipped sound that the input folder lacks; return the names copied."""
    input_dir = Path(folder_paths.get_input_directory())
    copied = []
    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        for sound in shipped():
            target = input_dir / sound.name
            # "x": create only; a file of that name, whoever made it, stays as it is.
            try:
                out = open(target, "xb")
            except FileExistsError:
                continue
            with out, open(sound, "rb") as src:
                try:
                    shutil.copyfileobj(src, out)
                except OSError:
                    out.close()
                    target.unlink()  # ours, half written
                    raise
            copied.append(sound.name)
    except OSError as err:
        log.warning("AudioToken: could not copy the sample sounds into %s (%s); the example workflows' "
                    "Load Audio needs a sound picked by hand", input_dir, err)
        return copied
    if copied:
        log.info("AudioToken: copied the sample sounds %s into %s for the example workflows (only missing "
                 "files; a file already there is never replaced)", ", ".join(copied), input_dir)
    return copied
