"""Paths of the official AudioToken files committed under tests/fixtures/official (see the README there)."""

from __future__ import annotations

from pathlib import Path

OFFICIAL = Path(__file__).resolve().parents[1] / "fixtures" / "official"
LORA = OFFICIAL / "lora_layers_learned_embeds.bin"
VGGSOUND = OFFICIAL / "VGGSound"
CLIP_IDS = ("-_gaZzFfzDQ_517000_527000", "3YOH4c9HXpo_290000_300000")
