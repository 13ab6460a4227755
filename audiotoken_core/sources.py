"""Where the official files come from: one table, so adding a file means adding a row.

Each row names the file, the ComfyUI models folder it belongs in, where to fetch it, how to check it and under
which licence it is published. `audiotoken_core.download` fetches and verifies; ComfyUI's download node and
`python -m train.generate --download` read this table and nothing else.

Verification, strongest first: a pinned SHA-256; a pinned git blob id (the official embedder: its git blob id is
all that is published, and `sha1(b"blob <size>\\0" + bytes)` pins size and content at once); or, where neither
is known, the SHA-256 the server itself states (Hugging Face sends `X-Linked-Etag` for large files). A download
that matches none of these is refused.

Environment:
- `AUDIOTOKEN_DOWNLOAD_MIRROR=http://HOST:PORT` replaces scheme and host of every URL and keeps its path, for a
  local mirror (and for the tests).
- `AUDIOTOKEN_DOWNLOAD_PINS=/path/pins.json`, `{"<file name>": {"size": N, "sha256": "..."}}`, replaces the
  checks of the named rows, for a mirror that serves other bytes than the official ones (test stand-ins). Rows
  cannot be added or re-pointed this way.
- `HF_ENDPOINT` is honoured by huggingface_hub for the base-model row.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

MIRROR_ENV = "AUDIOTOKEN_DOWNLOAD_MIRROR"
PINS_ENV = "AUDIOTOKEN_DOWNLOAD_PINS"

# Both files of the official repository are read at one commit, the last that has both: the LoRA was removed
# from `master` (its only branch) in Dec 2023. The embedder there is the blob `master` still serves (5d1f5c10…,
# the same in every commit that has it), so pinning changes no byte, only what a force-push could change.
_OFFICIAL = "https://github.com/guyyariv/AudioToken/raw/010d5b8d05a82b13d9ab707d84a7d5797922e139"
# The Space's BEATs is read at `main`, not at a revision: none could be established where this table was
# written (the Hub's commit list was out of reach), and a pin must name a revision known to hold these bytes.
# Its check is the SHA-256 the Hub states, so a file replaced on `main` would be accepted: pin the revision (and
# the file's SHA-256) when it can be read.
_SPACE = "https://huggingface.co/spaces/GuyYariv/AudioToken/resolve/main/models"


@dataclass(frozen=True)
class Source:
    """One downloadable file (or, with `hf_repo`, one Hugging Face model folder)."""

    name: str                    # file (or folder) name on disk
    kind: str                    # embedder | audio_encoder | lora | base_model
    folder: str                  # ComfyUI models folder key; "diffusers" is used outside ComfyUI only
    url: str | None              # None for an `hf_repo` row
    licence: str
    approx_bytes: int            # for messages before the download starts ("about 35 MB")
    size: int | None = None      # exact size when known
    sha256: str | None = None
    git_blob: str | None = None  # sha1 of b"blob <size>\0" + content
    hf_repo: str | None = None
    hf_files: tuple[str, ...] = ()  # allow_patterns for snapshot_download
    note: str = ""

    @property
    def checks(self) -> str:
        """How this file is verified, as a short tag for log lines and errors (`check_words` for users)."""
        if self.sha256:
            return "pinned SHA-256"
        if self.git_blob:
            return "pinned git blob id"
        if self.hf_repo:
            return "sizes and hashes listed by the Hub"
        return "the SHA-256 the server states"

    @property
    def check_words(self) -> str:
        """What a download must match before it gets its name, as a user reads it: the tooltip's and the download
        node's words (`checks` is the short tag of the log lines and errors)."""
        if self.sha256:
            if self.size:
                return f"size ({self.size:,} bytes) and SHA-256 ({self.sha256[:12]}…), both known in advance"
            return f"SHA-256 ({self.sha256[:12]}…), known in advance"
        if self.git_blob:
            return (f"size and content, through the git blob id the official repository publishes "
                    f"({self.git_blob[:12]}…, a SHA-1 over both)")
        if self.hf_repo:
            return "each file's size and hash, as the Hugging Face Hub lists them"
        return ("size and SHA-256, as the server states them (Hugging Face sends both with the file; a file sent "
                "without a hash is refused)")


SOURCES: tuple[Source, ...] = (
    Source(
        name="embedder_learned_embeds.bin", kind="embedder", folder="audiotoken",
        url=f"{_OFFICIAL}/output/embedder_learned_embeds.bin",
        licence="MIT, Guy Yariv et al. (github.com/guyyariv/AudioToken)", approx_bytes=35_400_000,
        git_blob="5d1f5c101e5b5e1fdf5637a2e372b0d441b09639",
        note="the official AudioToken Embedder (SD1.x, trained on SD 1.4)",
    ),
    Source(
        name="BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt", kind="audio_encoder", folder="audio_encoders",
        url=f"{_SPACE}/BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
        licence="MIT, Microsoft (github.com/microsoft/unilm, BEATs)", approx_bytes=363_145_291,
        note="the BEATs audio encoder the official Embedder reads (Microsoft's Azure links answer 403 since 2024; "
             "this is the copy in the AudioToken Hugging Face Space)",
    ),
    Source(
        name="lora_layers_learned_embeds.bin", kind="lora", folder="loras",
        url=f"{_OFFICIAL}/output/lora_layers_learned_embeds.bin",
        licence="MIT, Guy Yariv et al. (github.com/guyyariv/AudioToken)", approx_bytes=3_294_091,
        size=3_294_091, sha256="24c971f2e526f4f13331fb0fb85272d3efb3befc17f0d671b422360b26d864a5",
        git_blob="e65b829bf262f2d33b4b8ae6b5779d0aecc44f3e",
        note="the official rank-4 UNet LoRA published with the Embedder (optional: the paper trains only the "
             "Embedder)",
    ),
    Source(
        name="stable-diffusion-v1-5", kind="base_model", folder="diffusers", url=None,
        licence="CreativeML OpenRAIL-M (huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5)",
        approx_bytes=4_270_000_000, hf_repo="stable-diffusion-v1-5/stable-diffusion-v1-5",
        hf_files=("model_index.json", "scheduler/scheduler_config.json", "tokenizer/*",
                  "text_encoder/config.json", "text_encoder/model.safetensors",
                  "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                  "vae/config.json", "vae/diffusion_pytorch_model.safetensors"),
        note="Stable Diffusion 1.5 as a diffusers folder (fp32 weights, without safety checker)",
    ),
)


def find(name: str, folder: str | None = None) -> Source | None:
    """The row for a file name (exact, or the base name of a path); None when it is not an official file, or,
    with `folder`, not one of that ComfyUI models folder."""
    base = os.path.basename(str(name).rstrip("/\\"))
    return next((s for s in SOURCES if s.name == base and folder in (None, s.folder)), None)


def of_kind(kind: str) -> list[Source]:
    return [s for s in SOURCES if s.kind == kind]


def official(kind: str) -> Source:
    """The one row of `kind`: the official file (its name, its ComfyUI folder) every caller names."""
    (row,) = of_kind(kind)
    return row


def in_folder(folder: str) -> list[Source]:
    return [s for s in SOURCES if s.folder == folder]


def resolved(source: Source) -> Source:
    """`source` with the environment applied: mirror host and replacement checks."""
    url = mirrored(source.url) if source.url else None
    pins = _pins().get(source.name)
    if pins is None:
        return replace(source, url=url)
    return replace(source, url=url, size=pins.get("size"), sha256=pins.get("sha256"), git_blob=pins.get("git_blob"))


def mirrored(url: str) -> str:
    """`url` with scheme and host of AUDIOTOKEN_DOWNLOAD_MIRROR, its path and query kept."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    m = urlsplit(mirror if "//" in mirror else f"http://{mirror}")
    if not m.netloc:
        raise ValueError(f"{MIRROR_ENV}={mirror!r} is not a URL like http://HOST:PORT")
    u = urlsplit(url)
    return urlunsplit((m.scheme or "http", m.netloc, u.path, u.query, u.fragment))


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


_HEX = {"size": None, "sha256": re.compile(r"^[0-9a-f]{64}$"), "git_blob": re.compile(r"^[0-9a-f]{40}$")}


def _pins() -> dict[str, dict]:
    path = os.environ.get(PINS_ENV, "").strip()
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            pins = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{PINS_ENV}={path}: cannot read it as JSON ({exc})") from exc
    known = {s.name for s in SOURCES}
    for name, entry in pins.items():
        if name not in known:
            raise ValueError(f"{PINS_ENV}: {name!r} is not a file of the sources table ({', '.join(sorted(known))})")
        bad = [k for k, v in entry.items() if k not in _HEX or (_HEX[k] and not _HEX[k].match(str(v)))]
        if bad or not any(entry.get(k) for k in ("sha256", "git_blob")):
            raise ValueError(f"{PINS_ENV}: {name}: give size and a lowercase hex sha256 or git_blob (got {entry})")
    return pins
