"""Text on the node that is running, also when it then fails.

A node's `ui` preview reaches the frontend only with a result, and a failed node's exception message is shown
in the error panel, away from the node. The host's progress text (the line API nodes show while they wait) is
drawn on the node itself as soon as it is sent, so a node that is about to fail can leave its answer there.
"""

from __future__ import annotations

import logging

log = logging.getLogger("audiotoken")


def show_on_node(text: str) -> None:
    """Shows `text` on the node being executed; does nothing outside a server run (the in-process harness)."""
    try:
        from comfy_execution.utils import get_executing_context
        from server import PromptServer
    except ImportError:
        return
    context, server = get_executing_context(), getattr(PromptServer, "instance", None)
    if context is None or server is None:
        return
    try:
        server.send_progress_text(text, context.node_id)
    except Exception as exc:  # a message that cannot be sent must not hide the error it announces
        log.debug("could not show text on node %s: %s", context.node_id, exc)
