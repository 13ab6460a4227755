"""Tiny BEATs checkpoints in the official layout (``{'cfg', 'model', 'label_dict'}``) with random weights."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from audiotoken_core.beats import ITER3_AS2M_CFG, BEATs, BEATsConfig, build_beats
from audiotoken_core.embedder import AudioEmbedder, EmbedderMeta


def tiny_official_cfg(*, layers: int = 12, dim: int = 64, heads: int = 4, finetuned: bool = True) -> dict:
    """The iter3+ cfg (every option the released AS2M checkpoints use) at small widths."""
    return {
        **ITER3_AS2M_CFG,
        "embed_dim": max(dim // 2, 8),
        "encoder_layers": layers,
        "encoder_embed_dim": dim,
        "encoder_ffn_embed_dim": 2 * dim,
        "encoder_attention_heads": heads,
        "encoder_layerdrop": 0.05 if finetuned else 0.0,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "finetuned_model": finetuned,
    }


def tiny_official_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the official keys, scaled so activations stay O(1) through the layers.

    Biases, LayerNorm affines and gates are non-trivial on purpose: a loader that dropped or misplaced any
    of them changes the outputs.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    def linear(prefix: str, out_dim: int, in_dim: int) -> None:
        state[f"{prefix}.weight"] = rand(out_dim, in_dim, scale=1 / math.sqrt(in_dim))
        state[f"{prefix}.bias"] = rand(out_dim, scale=0.05)

    def norm(prefix: str, width: int) -> None:
        state[f"{prefix}.weight"] = 1 + rand(width, scale=0.1)
        state[f"{prefix}.bias"] = rand(width, scale=0.1)

    patch, embed, dim = cfg["input_patch_size"], cfg["embed_dim"], cfg["encoder_embed_dim"]
    heads, ffn, kernel = cfg["encoder_attention_heads"], cfg["encoder_ffn_embed_dim"], cfg["conv_pos"]
    head_dim = dim // heads
    state: dict[str, torch.Tensor] = {}
    state["patch_embedding.weight"] = rand(embed, 1, patch, patch, scale=1 / patch)
    norm("layer_norm", embed)
    linear("post_extract_proj", dim, embed)
    state["encoder.pos_conv.0.weight_g"] = 0.5 + torch.rand(1, 1, kernel, generator=gen)
    state["encoder.pos_conv.0.weight_v"] = rand(dim, dim // cfg["conv_pos_groups"], kernel)
    state["encoder.pos_conv.0.bias"] = rand(dim, scale=0.05)
    norm("encoder.layer_norm", dim)
    # one table object under every layer's key, as torch.save writes the official shared Embedding
    table = rand(cfg["num_buckets"], heads, scale=0.5)
    for i in range(cfg["encoder_layers"]):
        p = f"encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(f"{p}.self_attn.{proj}", dim, dim)
        linear(f"{p}.self_attn.grep_linear", 8, head_dim)
        state[f"{p}.self_attn.grep_a"] = 1 + rand(1, heads, 1, 1, scale=0.5)
        state[f"{p}.self_attn.relative_attention_bias.weight"] = table
        norm(f"{p}.self_attn_layer_norm", dim)
        linear(f"{p}.fc1", ffn, dim)
        linear(f"{p}.fc2", dim, ffn)
        norm(f"{p}.final_layer_norm", dim)
    if cfg["finetuned_model"]:
        linear("predictor", cfg["predictor_class"], dim)
    return state


def random_beats(cfg=ITER3_AS2M_CFG, *, seed: int = 0, device=None, dtype=None) -> BEATs:
    """A frozen eval-mode BEATs of this official-layout cfg (the released full size by default) with
    `tiny_official_state_dict`'s weights; it has the AudioSet head when the cfg is a fine-tuned one's."""
    cfg = dict(cfg)
    return build_beats(BEATsConfig.from_dict(cfg), tiny_official_state_dict(cfg, seed=seed), "random", device, dtype)


def full_size_audio(seed: int = 0, *, with_head: bool = False, device=None,
                    dtype=None) -> tuple[BEATs, AudioEmbedder]:
    """Random BEATs iter3+ at the released size (90 M) and an Embedder of the official shape (`EmbedderMeta`'s
    defaults: layers 4/8/12 of 768 -> one CLIP-L token), both frozen in eval mode: what the benchmarks time.
    Without `with_head` BEATs has no AudioSet head, as a pre-trained checkpoint loads."""
    beats = random_beats({**ITER3_AS2M_CFG, "finetuned_model": with_head}, seed=seed, device=device, dtype=dtype)
    meta = EmbedderMeta()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embedder = AudioEmbedder(meta.in_dim, meta.widths)
    return beats, embedder.eval().requires_grad_(False)


def audioset_label_dict(num_classes: int = ITER3_AS2M_CFG["predictor_class"]) -> dict[int, str]:
    """Real AudioSet MIDs in reverse ontology order: every output has a name, found only through the label_dict."""
    from audiotoken_core.labels import ontology

    mids = [mid for mid, _ in ontology()]
    return {i: mids[-1 - i] for i in range(num_classes)}


def steer_head(state: dict[str, torch.Tensor], label_dict: dict[int, str], head_logits: dict[str, float]) -> None:
    """Make the AudioSet head give about `head_logits` ({display name: logit}) for any sound, -6 elsewhere.

    The weights are shrunk, not zeroed, so scores still move a little with the sound and windows differ.
    """
    from audiotoken_core.labels import ontology

    index_of_mid = {mid: i for i, mid in label_dict.items()}
    mid_of_name = {name: mid for mid, name in ontology()}
    unknown = sorted(set(head_logits) - set(mid_of_name))
    if unknown:
        raise ValueError(f"not AudioSet display names: {unknown}")
    bias = torch.full_like(state["predictor.bias"], -6.0)
    for name, logit in head_logits.items():
        bias[index_of_mid[mid_of_name[name]]] = logit
    state["predictor.weight"] = state["predictor.weight"] * 0.01
    state["predictor.bias"] = bias


def write_tiny_official_beats(
    path: str | Path,
    *,
    layers: int = 12,
    dim: int = 64,
    heads: int = 4,
    seed: int = 0,
    finetuned: bool = True,
    head_logits: dict[str, float] | None = None,
) -> Path:
    """Write a tiny official-layout BEATs ``.pt`` and return its path.

    Fine-tuned ones carry the AudioSet head and a `label_dict` of real MIDs (`audioset_label_dict`); with
    `head_logits` the head names those classes whatever it hears (`steer_head`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = tiny_official_cfg(layers=layers, dim=dim, heads=heads, finetuned=finetuned)
    checkpoint = {"cfg": cfg, "model": tiny_official_state_dict(cfg, seed=seed)}
    if finetuned:
        checkpoint["label_dict"] = audioset_label_dict(cfg["predictor_class"])
        if head_logits:
            steer_head(checkpoint["model"], checkpoint["label_dict"], head_logits)
    torch.save(checkpoint, path)
    return path
