"""The progress callback the pack's long-running nodes hand to core: the host's bar, and a Cancel point."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.utils


def host_progress():
    """`progress(done, total)` that moves the node's progress bar and raises when Cancel was pressed."""
    bar = comfy.utils.ProgressBar(1)

    def progress(done, total):
        bar.update_absolute(done, total)
        mm.throw_exception_if_processing_interrupted()

    return progress
