"""Spoken-word sound classes made with espeak-ng: real within-class variation, no downloads.

Every clip of a class says the same phrase, but with its own voice, voice variant, speed, pitch, word gap,
lead-in silence and level, so clips of one class differ as recordings of one event do,
while the synthetic designs (`sounds.py`) differ mostly by a pitch or a level. The clips are written as
`<root>/<class word>/<n>.wav` (16-bit, espeak-ng's 22.05 kHz) and read back with `sounds.load_sound_folder`,
the same path `--sounds DIR` takes, so a generated set can also be inspected or reused as a folder.

espeak-ng is Debian's `espeak-ng` package (`apt-get install -y espeak-ng`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path

import torch

# Two sets with different words, so that one can be tuned on and the other kept for judging.
PHRASE_SETS: dict[str, dict[str, str]] = {
    "phrases": {
        "hello": "hello there",
        "thanks": "thank you very much",
        "weather": "what is the weather like",
        "music": "play some music",
        "stop": "stop right now",
        "light": "turn on the light",
        "door": "please open the door",
        "time": "what time is it",
    },
    "commands": {
        "forward": "go forward",
        "coffee": "a cup of coffee",
        "seven": "seven",
        "goodbye": "goodbye my friend",
        "yes": "yes of course",
        "kitchen": "in the kitchen",
        "number": "call this number",
        "quiet": "be quiet",
    },
}
# espeak-ng's own English voices (the mbrola ones need extra packages) and its plain male, female and klatt
# variants; the character voices (croak, whisper, ...) and a loud noise floor drown what a random-weight encoder
# can tell apart (a linear probe falls to near chance), which would leave nothing to measure
VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3"]
RECIPE_VERSION = 3
DITHER = 5e-4


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _u(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _pick(gen: torch.Generator, items: list[str]) -> str:
    return items[int(torch.randint(0, len(items), (), generator=gen))]


def _speak(text: str, path: Path, voice: str, speed: int, pitch: int, gap: int) -> None:
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap), "-w", str(path), text]
    subprocess.run(cmd, check=True, capture_output=True)


def _read_wav(path: Path) -> tuple[torch.Tensor, int]:
    with wave.open(str(path), "rb") as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = torch.frombuffer(bytearray(frames), dtype=torch.int16).float() / 32768.0
    return samples, rate


def _write_wav(path: Path, samples: torch.Tensor, rate: int) -> None:
    pcm = (samples.clamp(-1, 1) * 32767).round().to(torch.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.numpy().tobytes())


def spoken_clip(text: str, gen: torch.Generator, scratch: Path) -> tuple[torch.Tensor, int, dict]:
    """One utterance of `text` with its own delivery; returns samples, rate and the settings used."""
    how = {
        "voice": f"{_pick(gen, VOICES)}+{_pick(gen, VARIANTS)}",
        "speed": int(_u(gen, 120, 200)),  # words per minute
        "pitch": int(_u(gen, 25, 75)),
        "gap": int(_u(gen, 0, 5)),  # extra pause between words, 10 ms units
        "lead_in_s": round(_u(gen, 0.0, 0.4), 3),
        "level": round(_u(gen, 0.3, 0.9), 3),
    }
    tmp = scratch / "utterance.wav"
    _speak(text, tmp, how["voice"], how["speed"], how["pitch"], how["gap"])
    speech, rate = _read_wav(tmp)
    speech = speech / speech.abs().max().clamp(min=1e-6) * how["level"]
    clip = torch.cat([torch.zeros(int(how["lead_in_s"] * rate)), speech, torch.zeros(int(0.1 * rate))])
    # the same faint dither in every clip: a noise floor that varied per clip would decide the log-mel of
    # every pause and, to a random-weight encoder, drown the words (the probe fell from 0.57 to 0.45)
    clip = clip + DITHER * torch.randn(clip.shape[0], generator=gen)
    return clip, rate, how


def write_spoken_set(root: str | Path, set_name: str, classes: int, per_class: int, seed: int) -> Path:
    """`root/<class word>/<n>.wav` for the first `classes` phrases of `set_name`; kept when already written
    with the same settings (a `recipe.json` records them)."""
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed: `apt-get install -y espeak-ng` (Debian/Ubuntu)")
    phrases = PHRASE_SETS[set_name]
    if not 2 <= classes <= len(phrases):
        raise ValueError(f"the spoken set {set_name!r} has {len(phrases)} phrases; asked for {classes}")
    root = Path(root)
    recipe = {"version": RECIPE_VERSION, "set": set_name, "classes": classes, "per_class": per_class, "seed": seed}
    stamp = root / "recipe.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == recipe:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed * 7919 + 23)
    log = []
    for word, text in list(phrases.items())[:classes]:
        (root / word).mkdir()
        for n in range(per_class):
            clip, rate, how = spoken_clip(text, gen, root)
            _write_wav(root / word / f"{n:03d}.wav", clip, rate)
            log.append({"file": f"{word}/{n:03d}.wav", "text": text, **how})
    (root / "utterance.wav").unlink(missing_ok=True)
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    stamp.write_text(json.dumps(recipe))  # last: a set cut short by a crash is written again
    return root
