"""`python -m factories.fetch_child NAME FOLDER`: fetch one official file (or Hugging Face folder) into FOLDER in a
process of its own, as a second ComfyUI or `train.generate` would; logs on stderr, the path it got on stdout."""

from __future__ import annotations

import logging
import sys

from audiotoken_core import download, snapshot, sources


def main(name: str, folder: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    source = sources.find(name)
    got = snapshot.fetch_snapshot(source, folder) if source.hf_repo else download.fetch(source, folder, retry_wait_s=0)
    print(got, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
