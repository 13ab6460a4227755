"""What trains: the Embedder built for a base model (optionally from other weights), and the trainable state
(Embedder, LoRA) that checkpoints save and resume load."""

from __future__ import annotations

import torch

from .config import TrainConfig


def build_embedder(config: TrainConfig, base, encoder_width: int, audio_encoder: str):
    from audiotoken_core.embedder import AudioEmbedder, EmbedderMeta, load_embedder
    from audiotoken_core.prompt import check_fits

    counts = config.tokens_per_head(base.widths)
    meta = EmbedderMeta(
        audio_encoder=audio_encoder,
        layers=config.layers,
        encoder_width=encoder_width,
        widths=base.widths,
        n_tokens=counts,
        window_seconds=config.infer_window_seconds,
    )
    in_dim = encoder_width * len(config.layers)
    embedder = AudioEmbedder(in_dim, base.widths, counts, config.embedder_hidden_dim, meta=meta,
                             faithful_dropout=config.faithful_dropout)
    if config.init_embedder:
        init = load_embedder(config.init_embedder)
        check_fits(init.widths, base.widths, f"--init-embedder {config.init_embedder}")
        if init.in_dim != in_dim:
            raise ValueError(f"--init-embedder {config.init_embedder} does not fit this base model/encoder: it reads "
                             f"{init.in_dim}-wide features, this audio encoder gives {in_dim}")
        for name in embedder.head_names:
            embedder.heads[name].load_state_dict(init.heads[name].state_dict())
    return embedder


def trainable_state(embedder, unet, lora: bool) -> dict[str, torch.Tensor]:
    from audiotoken_core.embedder import embedder_tensors

    state = {f"embedder.{k}": v for k, v in embedder_tensors(embedder).items()}
    if lora:
        from .lora import lora_state

        state.update({f"lora.{k}": v for k, v in lora_state(unet).items()})
    return state


def load_trainable(state: dict[str, torch.Tensor], embedder, unet, lora: bool) -> None:
    from audiotoken_core.embedder import embedder_tensors

    names = embedder_tensors(embedder)
    emb = {k[len("embedder."):]: v for k, v in state.items() if k.startswith("embedder.")}
    if set(emb) != set(names):
        raise ValueError("checkpoint Embedder does not match this run's Embedder (different heads or sizes)")
    with torch.no_grad():
        embedder.heads.load_state_dict(emb, strict=True)
    if lora:
        from .lora import load_lora

        load_lora(unet, {k[len("lora."):]: v for k, v in state.items() if k.startswith("lora.")})

