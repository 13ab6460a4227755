"""Every node has the help page the frontend asks for (`<WEB_DIRECTORY>/docs/<node id>.md`, frontend 1.53-1.58),
and what a page points at is there: its pictures beside it, its templates in example_workflows/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "web" / "docs"
NODE_IDS = sorted(m for f in (ROOT / "nodes").glob("*.py")
                  for m in re.findall(r'node_id="(\w+)"', f.read_text(encoding="utf-8")))


def test_web_directory_is_where_the_pages_are():
    assert re.search(r'^WEB_DIRECTORY = "\./web"$', (ROOT / "__init__.py").read_text(), re.MULTILINE)


def test_every_node_has_a_page_with_a_picture_and_a_template():
    assert len(NODE_IDS) == 8
    assert sorted(p.stem for p in DOCS.glob("*.md")) == NODE_IDS
    for node_id in NODE_IDS:
        text = (DOCS / f"{node_id}.md").read_text(encoding="utf-8")
        # The frontend resolves a relative picture against /extensions/<pack>/docs/: beside the pages.
        images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert images, node_id
        for image in images:
            assert not image.startswith(("/", "http", "..")) and (DOCS / image).is_file(), (node_id, image)
        templates = re.findall(r"\]\([^)]*/example_workflows/([\w.]+\.json)\)", text)
        assert templates, node_id
        for template in templates:
            assert (ROOT / "example_workflows" / template).is_file(), (node_id, template)
        for heading in ("## Input", "## Output", "## Settings for the common cases", "## Template"):
            assert heading in text, (node_id, heading)
