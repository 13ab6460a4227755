"""Fetching a Hugging Face model folder (`Source.hf_repo`) with huggingface_hub, imported only here, then checking
every file against the sizes and hashes the Hub lists."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .download import VERIFIED_MARK, DownloadError, announce, for_file, instead, where_to_put
from .download_lock import download_lock
from .hashes import git_blob_id, sha256_of
from .sources import Source

log = logging.getLogger("audiotoken.download")


def fetch_snapshot(source: Source, folder: str | os.PathLike) -> Path:
    """`folder/<name>`: the Hub repo's `hf_files`, via huggingface_hub (HF_ENDPOINT honoured), each checked
    against the size and hash the Hub lists; a bad file is deleted. huggingface_hub shows its own tqdm bars.
    While another process fetches the same folder, waits and then uses it once that process has verified it."""
    dest = Path(folder) / source.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One lock for the whole folder: the listing, the files and the checks are one job.
    with download_lock(dest, source.name) as waited:
        if waited and (dest / VERIFIED_MARK).is_file():
            log.info("%s was downloaded and verified by the other process; using %s", source.name, dest)
            return dest
        # the mark says "checked as a whole": not while its files are being replaced
        (dest / VERIFIED_MARK).unlink(missing_ok=True)
        with for_file(source, dest.parent):
            return _fetch_locked(source, dest)


def _fetch_locked(source: Source, dest: Path) -> Path:
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.utils import filter_repo_objects
    except ImportError as exc:
        raise DownloadError(f"{source.name}: downloading a model folder needs huggingface_hub "
                            f"(pip install huggingface_hub). Or " + where_to_put(source, dest)) from exc
    log.info("%s", announce(source, dest))
    try:
        # read here, not at huggingface_hub's import: the endpoint may be set after the library was loaded
        api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
        commit = api.model_info(source.hf_repo).sha
        snapshot_download(source.hf_repo, revision=commit, allow_patterns=list(source.hf_files), local_dir=dest,
                          endpoint=api.endpoint)
        listed = [f for f in api.list_repo_tree(source.hf_repo, revision=commit, recursive=True) if hasattr(f, "blob_id")]
    except Exception as exc:  # huggingface_hub raises many types (offline, 404, gated, HTTP); the user needs the path
        raise DownloadError(f"{source.name}: the Hugging Face download failed ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}). " + instead(source, dest)) from None
    wanted = {f.path: f for f in listed}
    chosen = list(filter_repo_objects(list(wanted), allow_patterns=list(source.hf_files)))
    for rel in chosen:
        _verify_hub_file(dest / rel, wanted[rel], source, dest)
    (dest / VERIFIED_MARK).write_text(f"{source.hf_repo}@{commit}\n")
    log.info("verified %s: %d files of %s@%s match the sizes and hashes the Hub lists", source.name, len(chosen),
             source.hf_repo, commit[:12])
    return dest


def _verify_hub_file(path: Path, entry, source: Source, dest: Path) -> None:
    lfs = getattr(entry, "lfs", None)
    size = lfs.size if lfs else entry.size
    if not path.is_file():
        raise DownloadError(f"{source.name}: {path} is missing after the download. " + instead(source, dest))
    if lfs:
        ok = path.stat().st_size == size and sha256_of(path) == lfs.sha256
    else:
        ok = path.stat().st_size == size and git_blob_id(path) == entry.blob_id
    if not ok:
        path.unlink()
        raise DownloadError(f"{source.name}: {path.relative_to(dest)} does not match the size and hash the Hub lists; "
                            "it was deleted. Run again to fetch it anew, or " + where_to_put(source, dest))

