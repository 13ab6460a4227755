"""One benchmark run: toy T2I → frozen → Embedder trained on sounds → generations judged by a classifier.

Beside the token and the text upper bound, every result reports a linear probe on the frozen audio features
(`probe.py`): what the Embedder's inputs hold about the class. Token / probe is the share of it the training
recovers; token / text the share of what the T2I model can draw.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import audio_token, classify, flow_t2i, pictures, probe, sounds, spoken, t2i

SOURCES = ("synthetic", *spoken.PHRASE_SETS)
# the toy T2I model: the UNet world (ε prediction, CLIP) or its flow-matching twin (velocity, T5 + SD3 transformer);
# each module builds, trains, saves, loads, encodes prompts and samples its kind
DENOISERS = {"unet": t2i, "flow": flow_t2i}


@dataclass
class Settings:
    seed: int = 0
    classes: int = 6
    minutes: float = 20.0
    out: str = "runs/toyworld"
    source: str = "synthetic"  # synthetic designs, or a spoken set made with espeak-ng (spoken.PHRASE_SETS)
    sounds_dir: str | None = None  # a folder of real sounds instead (overrides `source`)
    beats: str | None = None
    threads: int = 1  # two threads stall badly whenever another job shares the cores
    t2i_steps: int = 800
    t2i_batch: int = 32
    t2i_lr: float = 2e-3
    embed_steps: int = 1000
    embed_batch: int = 32
    embed_lr: float = 1e-4  # per sample: the trainer scales it by the batch size (scale_lr)
    embed_lr_scheduler: str = "cosine"  # decays to 0: the diffusion loss is a noisy signal for one token
    embed_views: int = 8  # audio windows per training clip, one drawn per step (see audio_token.py)
    lambda_l1: float = 0.0  # see docs/benchmarks.md: the trainer's 0.01 keeps this toy token at 0.3x a word's norm
    lambda_norm: float = 0.01
    class_loss: bool = True
    train_sounds: int = 24  # per class, synthetic only
    held_sounds: int = 8
    spoken_clips: int = 40  # per class, spoken sets only; a quarter held out
    window_s: float = 2.0
    sample_steps: int = 20
    guidance: float = 3.0
    pictures_per_class: int = 256
    classifier_steps: int = 300
    reuse_t2i: bool = False
    denoiser: str = "unet"  # a key of DENOISERS


class Clock:
    """Wall and CPU seconds since the start; CPU time shows the work when other jobs share the cores."""

    def __init__(self, minutes: float):
        self.t0, self.c0 = time.monotonic(), time.process_time()
        self.budget = minutes * 60

    def deadline(self, fraction: float) -> float:
        return self.t0 + self.budget * fraction

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.t0:6.0f} s wall, {time.process_time() - self.c0:6.0f} s cpu]"


def load_sounds(s: Settings, out: Path, log) -> sounds.SoundSet:
    if s.sounds_dir:
        log(f"loading sounds from {s.sounds_dir}")
        snd = sounds.load_sound_folder(s.sounds_dir, held_fraction=0.25, seed=s.seed)
    elif s.source == "synthetic":
        if not 2 <= s.classes <= len(sounds.DESIGNS):
            raise ValueError(f"--classes must be between 2 and {len(sounds.DESIGNS)}")
        log(f"synthesising {s.classes} sound classes ({s.train_sounds} train + {s.held_sounds} held-out each)")
        snd = sounds.synth_sounds(sounds.WORDS[: s.classes], s.train_sounds, s.held_sounds, s.seed)
    elif s.source in spoken.PHRASE_SETS:
        log(f"speaking {s.classes} phrases of the set {s.source!r} with espeak-ng ({s.spoken_clips} clips each)")
        root = spoken.write_spoken_set(out / f"sounds-{s.source}-seed{s.seed}", s.source, s.classes, s.spoken_clips,
                                       s.seed)
        snd = sounds.load_sound_folder(root, held_fraction=0.25, seed=s.seed)
    else:
        raise ValueError(f"unknown sound source {s.source!r}: one of {', '.join(SOURCES)}")
    if len(snd.names) > len(pictures.STYLES):
        raise ValueError(f"{len(snd.names)} sound classes, but only {len(pictures.STYLES)} picture classes exist")
    return snd


def toy_t2i(s: Settings, names: list[str], pool, out: Path, clock: Clock, log):
    """The frozen toy T2I model; `(base, steps trained)`. Word i always draws picture class i and the vocabulary
    is positional, so a model saved for other class words of the same K and seed fits as it is."""
    world = DENOISERS[s.denoiser]
    base = world.build(names, s.seed)
    saved = out / (f"toy-t2i-k{len(names)}.pt" if s.denoiser == "unet" else f"toy-{s.denoiser}-t2i-k{len(names)}.pt")
    recipe = {"classes": len(names), "seed": s.seed, "steps": s.t2i_steps, "batch": s.t2i_batch, "lr": s.t2i_lr,
              "pictures_per_class": s.pictures_per_class}
    if s.reuse_t2i and world.load(base, saved, recipe):
        log(f"reusing the toy T2I model in {saved} (same K, seed and recipe)")
        return base, s.t2i_steps
    log(f"training the toy T2I model ({s.t2i_steps} steps, batch {s.t2i_batch})")
    done = world.train_t2i(base, pool, s.t2i_steps, s.t2i_batch, s.t2i_lr, s.seed, clock.deadline(0.6), log)
    if done == s.t2i_steps:
        world.save(base, saved, recipe)
    return base, done


def judge(s: Settings, names: list[str], pool, log):
    """The picture classifier and its accuracy on fresh clean pictures."""
    log("training the picture classifier on clean pictures")
    model = classify.train_classifier(pool, s.classifier_steps, s.seed, log)
    fresh = pictures.PicturePool(names, 16, s.seed + 1000)
    clean_acc = float((classify.predict(model, fresh.images) == fresh.kinds).float().mean())
    log(f"  classifier accuracy on fresh clean pictures: {clean_acc:.3f}")
    return model, clean_acc


def train_token(s: Settings, base, pool, snd: sounds.SoundSet, out: Path, clock: Clock, log) -> dict:
    """Frozen BEATs + the Embedder trained with the trainer's step; also the probe on the same features."""
    from audiotoken_core.beats import load_beats
    from audiotoken_core.pipeline import AudioTokenizer

    beats_path = Path(s.beats) if s.beats else _tiny_beats(out, s.seed)
    beats = load_beats(beats_path)
    beats.requires_grad_(False)
    config = audio_token.make_config(s.seed, s.embed_steps, s.embed_batch, s.embed_lr, s.window_s, str(out),
                                     s.embed_lr_scheduler, lambda_l1=s.lambda_l1, lambda_norm=s.lambda_norm,
                                     class_loss=s.class_loss)
    embedder = audio_token.new_embedder(config, base, beats.embed_dim, beats_path.stem)
    tokenizer = AudioTokenizer(beats, embedder)
    log(f"BEATs {beats_path.name}: width {beats.embed_dim}, {beats.num_layers} layers; {s.embed_views} windows of "
        f"each of {len(snd.train)} training clips")
    views = audio_token.training_views(tokenizer, [c for c, _ in snd.train], s.window_s, s.embed_views, s.seed)
    labels = torch.tensor([y for _, y in snd.train])
    held_feats = audio_token.features_for(tokenizer, [c for c, _ in snd.held_out], s.window_s)
    held_labels = torch.tensor([y for _, y in snd.held_out])
    # the probe sees what the token sees at inference: the first window of each clip, features of view 0
    lin = probe.linear_probe(views[0], labels, held_feats, held_labels, len(snd.names), s.seed)
    log(f"  linear probe on the frozen features: {lin['accuracy']:.3f} held-out (L2 {lin['l2']:g})")
    log(f"training the Embedder ({s.embed_steps} steps, batch {s.embed_batch}; "
        f"{sum(p.numel() for p in embedder.parameters()):,} parameters, everything else frozen)")
    done = audio_token.train_embedder(config, base, embedder, views, labels, pool, clock.deadline(0.9), log)
    return {"tokenizer": tokenizer, "embedder": embedder, "beats_path": beats_path, "steps": done, "probe": lin}


def generations(s: Settings, base, tokenizer, snd: sounds.SoundSet, model):
    """Pictures from held-out sounds and from the true class word, same starting noise; their predicted classes."""
    world = DENOISERS[s.denoiser]
    held_labels = torch.tensor([y for _, y in snd.held_out])
    tokens = torch.cat([
        tokenizer.encode(clip[None], sounds.RATE, duration_s=s.window_s).tokens[base.heads[0]] for clip, _ in snd.held_out
    ])
    audio_cond = world.encode_prompts(base, [world.AUDIO_PROMPT] * len(tokens), tokens)
    text_cond = world.encode_prompts(base, [world.PROMPT.format(snd.names[y]) for y in held_labels.tolist()])
    gen_seed = s.seed + 4242
    audio_imgs = world.sample(base, audio_cond, gen_seed, s.sample_steps, s.guidance)
    text_imgs = world.sample(base, text_cond, gen_seed, s.sample_steps, s.guidance)
    return held_labels, audio_imgs, text_imgs, classify.predict(model, audio_imgs), classify.predict(model, text_imgs)


def run(s: Settings) -> dict:
    from audiotoken_core.embedder import save_embedder

    torch.set_num_threads(max(1, s.threads))
    torch.manual_seed(s.seed)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(s.minutes)

    def log(msg: str) -> None:
        print(f"{clock.stamp()} {msg}", flush=True)

    snd = load_sounds(s, out, log)
    names = snd.names
    log(f"classes: {', '.join(f'{n}={pictures.STYLES[i][0]}' for i, n in enumerate(names))}")
    pool = pictures.PicturePool(names, s.pictures_per_class, s.seed)
    base, t2i_done = toy_t2i(s, names, pool, out, clock, log)
    model, clean_acc = judge(s, names, pool, log)
    token = train_token(s, base, pool, snd, out, clock, log)
    embedder_path = save_embedder(token["embedder"], out / "toyworld-embedder.safetensors")
    log(f"generating {len(snd.held_out)} pictures from held-out sounds and {len(snd.held_out)} from text")
    labels, audio_imgs, text_imgs, audio_pred, text_pred = generations(s, base, token["tokenizer"], snd, model)

    result = _summarise(s, names, labels, audio_pred, text_pred, token["probe"]["accuracy"], clean_acc, clock,
                        t2i_done=t2i_done, embed_done=token["steps"])
    result.update(embedder=str(embedder_path), beats=str(token["beats_path"]), probe_l2=token["probe"]["l2"])
    _save_sheet(out / "held_out_audio.png", audio_imgs, labels, len(names))
    _save_sheet(out / "held_out_text.png", text_imgs, labels, len(names))
    (out / "result.json").write_text(json.dumps(result, indent=2))
    (out / "table.md").write_text(result["table"] + "\n")
    log(f"wrote {out / 'table.md'}, {out / 'result.json'}, contact sheets and {embedder_path.name}")
    return result


def _tiny_beats(out: Path, seed: int) -> Path:
    """A random 12-layer BEATs from testkit: frozen random features still tell apart sounds
    whose energy sits in different mel bands, which is all this world needs."""
    from testkit.beats import write_tiny_official_beats

    return write_tiny_official_beats(out / f"tiny-beats-seed{seed}.pt", layers=12, dim=64, heads=4, seed=seed)


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean())


def _summarise(s, names, labels, audio_pred, text_pred, probe_acc, clean_acc, clock, **steps) -> dict:
    k, n = len(names), len(labels)
    audio_acc, text_acc = _accuracy(audio_pred, labels), _accuracy(text_pred, labels)
    ratio = audio_acc / text_acc if text_acc > 0 else float("nan")
    of_probe = audio_acc / probe_acc if probe_acc > 0 else float("nan")
    # the token can show no more than its features hold (probe) and the T2I model can draw (text)
    bound = min(text_acc, probe_acc)
    rows = [
        "| held-out sounds (n = %d, %d classes) | accuracy | × chance | ratio to text | ratio to probe |" % (n, k),
        "|---|---|---|---|---|",
        f"| audio token → picture → classifier | {audio_acc:.3f} | {audio_acc * k:.2f} | {ratio:.2f} | {of_probe:.2f} |",
        f"| text prompt with the true class word (upper bound) | {text_acc:.3f} | {text_acc * k:.2f} | 1.00 | |",
        f"| linear probe on the frozen audio features | {probe_acc:.3f} | {probe_acc * k:.2f} | | 1.00 |",
        f"| chance (1/K) | {1 / k:.3f} | 1.00 | | |",
    ]
    per_class = {names[c]: {"audio": _accuracy(audio_pred[labels == c], c), "text": _accuracy(text_pred[labels == c], c)}
                 for c in range(k)}
    wall, cpu = time.monotonic() - clock.t0, time.process_time() - clock.c0
    # a ratio means nothing if the text prompts or the features themselves are near chance
    meaningful = bound >= min(1.0, 2.0 / k)
    met = meaningful and audio_acc >= 0.8 * bound
    verdict = ("PASS" if met else "BELOW GOAL") if meaningful else "NOT MEASURED (text or probe near chance)"
    table = "\n".join(rows) + (
        f"\n\nGoal: audio ≥ 0.80 × min(text, probe) → **{verdict}** ({audio_acc:.3f} vs {0.8 * bound:.3f}). "
        f"Classifier on clean pictures: {clean_acc:.3f}. Wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min, "
        f"{s.threads} threads; steps: T2I {steps['t2i_done']}/{s.t2i_steps}, Embedder {steps['embed_done']}/{s.embed_steps}."
    )
    print("\n" + table + "\n\nper class (audio / text): " + ", ".join(
        f"{c} {v['audio']:.2f}/{v['text']:.2f}" for c, v in per_class.items()), flush=True)
    return {
        "classes": names, "audio_accuracy": audio_acc, "text_accuracy": text_acc, "probe_accuracy": probe_acc,
        "chance": 1 / k, "ratio_to_upper_bound": ratio, "ratio_to_probe": of_probe, "goal_met": met,
        "clean_classifier_accuracy": clean_acc, "per_class": per_class, "wall_seconds": wall, "cpu_seconds": cpu,
        "settings": vars(s), "steps_done": steps,
        "stopped_by_budget": steps["t2i_done"] < s.t2i_steps or steps["embed_done"] < s.embed_steps, "table": table,
    }


def _save_sheet(path: Path, images: torch.Tensor, labels: torch.Tensor, k: int) -> None:
    """One row per class, held-out items left to right."""
    from PIL import Image

    per = max(int((labels == c).sum()) for c in range(k))
    cell = pictures.OUT + 2
    sheet = torch.zeros(3, k * cell, per * cell, dtype=torch.uint8)
    col = [0] * k
    for img, y in zip(pictures.to_uint8(images), labels.tolist()):
        r, c = y * cell + 1, col[y] * cell + 1
        sheet[:, r : r + pictures.OUT, c : c + pictures.OUT] = img
        col[y] += 1
    Image.fromarray(sheet.permute(1, 2, 0).numpy()).resize((per * cell * 4, k * cell * 4), Image.NEAREST).save(path)
