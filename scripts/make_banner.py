"""Draw docs/img/banner.png (the registry's banner, [tool.comfy] Banner) from the icon and the workflow picture.

Run from the repository root: `.venv/bin/python scripts/make_banner.py`. Needs Pillow and the DejaVu fonts.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

IMG = Path("docs/img")
SIZE = (1280, 320)
BACKGROUND = (36, 28, 78)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans{}.ttf"


def main() -> None:
    banner = Image.new("RGB", SIZE, BACKGROUND)
    icon = Image.open(IMG / "icon.png").convert("RGBA").resize((240, 240), Image.LANCZOS)
    banner.paste(icon, (40, 40), icon)
    # The nodes that carry the sound: Model Loader, Load Audio and Encode.
    graph = Image.open(IMG / "workflow.png").convert("RGB").crop((88, 230, 600, 490))
    graph = graph.resize((int(graph.width * 260 / graph.height), 260), Image.LANCZOS)
    banner.paste(graph, (SIZE[0] - graph.width - 30, 30))
    draw = ImageDraw.Draw(banner)
    draw.text((310, 95), "AudioToken", font=ImageFont.truetype(FONT.format("-Bold"), 54), fill="white")
    small = ImageFont.truetype(FONT.format(""), 24)
    draw.text((312, 170), "sound to image", font=small, fill=(200, 196, 240))
    draw.text((312, 205), "for ComfyUI", font=small, fill=(200, 196, 240))
    banner.save(IMG / "banner.png", optimize=True)


if __name__ == "__main__":
    main()
