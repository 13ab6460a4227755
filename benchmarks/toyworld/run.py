"""One benchmark run: toy T2I → frozen → Embedder trained on sounds → generations judged by a classifier."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import audio_token, classify, pictures, sounds, t2i


@dataclass
class Settings:
    seed: int = 0
    classes: int = 6
    minutes: float = 20.0
    out: str = "runs/toyworld"
    sounds_dir: str | None = None
    beats: str | None = None
    threads: int = 1  # two threads stall badly whenever another job shares the cores
    t2i_steps: int = 800
    t2i_batch: int = 32
    t2i_lr: float = 2e-3
    embed_steps: int = 1000
    embed_batch: int = 32
    embed_lr: float = 1e-4  # per sample: the trainer scales it by the batch size (scale_lr)
    embed_lr_scheduler: str = "cosine"  # decays to 0: the diffusion loss is a noisy signal for one token
    train_sounds: int = 24  # per class, synthetic only
    held_sounds: int = 8
    window_s: float = 2.0
    sample_steps: int = 20
    guidance: float = 3.0
    pictures_per_class: int = 256
    classifier_steps: int = 300
    reuse_t2i: bool = False


class Clock:
    """Wall and CPU seconds since the start; CPU time shows the work when other jobs share the cores."""

    def __init__(self, minutes: float):
        self.t0, self.c0 = time.monotonic(), time.process_time()
        self.budget = minutes * 60

    def deadline(self, fraction: float) -> float:
        return self.t0 + self.budget * fraction

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.t0:6.0f} s wall, {time.process_time() - self.c0:6.0f} s cpu]"


def run(s: Settings) -> dict:
    torch.set_num_threads(max(1, s.threads))
    torch.manual_seed(s.seed)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(s.minutes)

    def log(msg: str) -> None:
        print(f"{clock.stamp()} {msg}", flush=True)

    # ---- sounds and their class words
    if s.sounds_dir:
        log(f"loading sounds from {s.sounds_dir}")
        snd = sounds.load_sound_folder(s.sounds_dir, held_fraction=0.25, seed=s.seed)
        if len(snd.names) > len(pictures.STYLES):
            raise ValueError(f"{len(snd.names)} sound classes, but only {len(pictures.STYLES)} picture classes exist")
    else:
        if not 2 <= s.classes <= len(sounds.DESIGNS):
            raise ValueError(f"--classes must be between 2 and {len(sounds.DESIGNS)}")
        log(f"synthesising {s.classes} sound classes ({s.train_sounds} train + {s.held_sounds} held-out each)")
        snd = sounds.synth_sounds(sounds.WORDS[: s.classes], s.train_sounds, s.held_sounds, s.seed)
    names, k = snd.names, len(snd.names)
    log(f"classes: {', '.join(f'{n}={pictures.STYLES[i][0]}' for i, n in enumerate(names))}")

    # ---- the toy world's pretrained T2I model, then frozen
    pool = pictures.PicturePool(names, s.pictures_per_class, s.seed)
    base = t2i.build(names, s.seed)
    saved = out / "toy-t2i.pt"
    recipe = {"names": names, "seed": s.seed, "steps": s.t2i_steps, "batch": s.t2i_batch, "lr": s.t2i_lr,
              "pictures_per_class": s.pictures_per_class}
    if s.reuse_t2i and t2i.load(base, saved, recipe):
        t2i_done = s.t2i_steps
        log(f"reusing the toy T2I model in {saved} (same classes, seed and recipe)")
    else:
        log(f"training the toy T2I model ({s.t2i_steps} steps, batch {s.t2i_batch})")
        t2i_done = t2i.train_t2i(base, pool, s.t2i_steps, s.t2i_batch, s.t2i_lr, s.seed, clock.deadline(0.6), log)
        if t2i_done == s.t2i_steps:
            t2i.save(base, saved, recipe)

    log("training the picture classifier on clean pictures")
    judge = classify.train_classifier(pool, s.classifier_steps, s.seed, log)
    fresh = pictures.PicturePool(names, 16, s.seed + 1000)
    clean_acc = float((classify.predict(judge, fresh.images) == fresh.kinds).float().mean())
    log(f"  classifier accuracy on fresh clean pictures: {clean_acc:.3f}")

    # ---- frozen audio encoder and the Embedder trained with the trainer's step
    from audiotoken_core.beats import load_beats
    from audiotoken_core.embedder import save_embedder
    from audiotoken_core.pipeline import AudioTokenizer

    beats_path = Path(s.beats) if s.beats else _tiny_beats(out, s.seed)
    beats = load_beats(beats_path)
    beats.requires_grad_(False)
    config = audio_token.make_config(s.seed, s.embed_steps, s.embed_batch, s.embed_lr, s.window_s, str(out),
                                     s.embed_lr_scheduler)
    embedder = audio_token.new_embedder(config, base, beats.embed_dim, beats_path.stem)
    tokenizer = AudioTokenizer(beats, embedder)
    log(f"BEATs {beats_path.name}: width {beats.embed_dim}, {beats.num_layers} layers; features of "
        f"{len(snd.train)} training clips")
    feats = audio_token.features_for(tokenizer, [c for c, _ in snd.train], s.window_s)
    labels = torch.tensor([y for _, y in snd.train])
    log(f"training the Embedder ({s.embed_steps} steps, batch {s.embed_batch}; "
        f"{sum(p.numel() for p in embedder.parameters()):,} parameters, everything else frozen)")
    embed_done = audio_token.train_embedder(config, base, embedder, feats, labels, pool, clock.deadline(0.9), log)
    embedder_path = save_embedder(embedder, out / "toyworld-embedder.safetensors")

    # ---- generations from held-out sounds vs the true class word, same starting noise
    held_labels = torch.tensor([y for _, y in snd.held_out])
    log(f"generating {len(snd.held_out)} pictures from held-out sounds and {len(snd.held_out)} from text")
    tokens = torch.cat([
        tokenizer.encode(clip[None], sounds.RATE, duration_s=s.window_s)["l"] for clip, _ in snd.held_out
    ])
    audio_cond = t2i.encode_prompts(base, [t2i.AUDIO_PROMPT] * len(tokens), tokens)
    text_cond = t2i.encode_prompts(base, [t2i.PROMPT.format(names[y]) for y in held_labels.tolist()])
    gen_seed = s.seed + 4242
    audio_imgs = t2i.sample(base, audio_cond, gen_seed, s.sample_steps, s.guidance)
    text_imgs = t2i.sample(base, text_cond, gen_seed, s.sample_steps, s.guidance)
    audio_pred = classify.predict(judge, audio_imgs)
    text_pred = classify.predict(judge, text_imgs)

    result = _summarise(s, names, held_labels, audio_pred, text_pred, clean_acc, clock,
                        t2i_done=t2i_done, embed_done=embed_done)
    result["embedder"] = str(embedder_path)
    result["beats"] = str(beats_path)
    _save_sheet(out / "held_out_audio.png", audio_imgs, held_labels, k)
    _save_sheet(out / "held_out_text.png", text_imgs, held_labels, k)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    (out / "table.md").write_text(result["table"] + "\n")
    log(f"wrote {out / 'table.md'}, {out / 'result.json'}, contact sheets and {embedder_path.name}")
    return result


def _tiny_beats(out: Path, seed: int) -> Path:
    """A random 12-layer BEATs from the test factory: frozen random features still tell apart sounds
    whose energy sits in different mel bands, which is all this world needs."""
    from tests.factories.beats import write_tiny_official_beats

    return write_tiny_official_beats(out / f"tiny-beats-seed{seed}.pt", layers=12, dim=64, heads=4, seed=seed)


def _summarise(s, names, labels, audio_pred, text_pred, clean_acc, clock, **steps) -> dict:
    k = len(names)
    audio_acc = float((audio_pred == labels).float().mean())
    text_acc = float((text_pred == labels).float().mean())
    ratio = audio_acc / text_acc if text_acc > 0 else float("nan")
    n = len(labels)
    rows = [
        "| generations (n = %d, %d classes) | accuracy | × chance | ratio to upper bound |" % (n, k),
        "|---|---|---|---|",
        f"| audio token from held-out sounds | {audio_acc:.3f} | {audio_acc * k:.2f} | {ratio:.2f} |",
        f"| text prompt with the true class word (upper bound) | {text_acc:.3f} | {text_acc * k:.2f} | 1.00 |",
        f"| chance (1/K) | {1 / k:.3f} | 1.00 | {1 / k / text_acc if text_acc else float('nan'):.2f} |",
    ]
    per_class = {
        names[c]: {
            "audio": float((audio_pred[labels == c] == c).float().mean()),
            "text": float((text_pred[labels == c] == c).float().mean()),
        }
        for c in range(k)
    }
    wall = time.monotonic() - clock.t0
    cpu = time.process_time() - clock.c0
    # a ratio means nothing if the text prompts themselves are near chance (T2I model undertrained)
    meaningful = text_acc >= min(1.0, 2.0 / k)
    verdict = ("PASS" if ratio >= 0.8 else "BELOW GOAL") if meaningful else "NOT MEASURED (upper bound near chance)"
    table = "\n".join(rows) + (
        f"\n\nGoal: audio ≥ 0.80 × upper bound → **{verdict}** (ratio {ratio:.2f}). "
        f"Classifier on clean pictures: {clean_acc:.3f}. Wall {wall / 60:.1f} min, CPU {cpu / 60:.1f} min, "
        f"{s.threads} threads; steps: T2I {steps['t2i_done']}/{s.t2i_steps}, Embedder {steps['embed_done']}/{s.embed_steps}."
    )
    print("\n" + table + "\n\nper class (audio / text): " + ", ".join(
        f"{n} {v['audio']:.2f}/{v['text']:.2f}" for n, v in per_class.items()), flush=True)
    return {
        "classes": names, "audio_accuracy": audio_acc, "text_accuracy": text_acc, "chance": 1 / k,
        "ratio_to_upper_bound": ratio, "goal_met": meaningful and ratio >= 0.8, "clean_classifier_accuracy": clean_acc,
        "per_class": per_class, "wall_seconds": wall, "cpu_seconds": cpu, "settings": vars(s),
        "steps_done": steps, "stopped_by_budget": steps["t2i_done"] < s.t2i_steps or steps["embed_done"] < s.embed_steps,
        "table": table,
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
