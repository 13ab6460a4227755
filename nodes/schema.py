"""The nodes' `io.Schema`, with the search words each node is found by where the host's search takes them."""

from __future__ import annotations

from comfy_api.latest import io

from . import host_compat


def schema(*, search_aliases: list[str], **fields) -> io.Schema:
    """`io.Schema(**fields)`, plus `search_aliases` on a host whose Schema has the field (0.33.0, not 0.3.64).

    The aliases are the words people type into the node search ("sound to image", "microphone"); the frontend
    matches them besides the display name."""
    if "search_aliases" in host_compat.schema_fields():
        fields["search_aliases"] = list(search_aliases)
    return io.Schema(**fields)
