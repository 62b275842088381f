"""Draw HashGrid's brand images (custom_components/hashgrid/brand/).

The icon is a bitcoin-orange hash (#) crossed by a lightning bolt on a dark
rounded square; the logo adds the name. Drawn at 4x and scaled down, so every
size is sharp: icon.png 256, icon@2x.png 512, logo.png 128 high, logo@2x.png 256;
dark_logo*.png write the name in a light colour for dark themes (the icon has
its own dark background, so it needs no dark variant).
Run: .venv/bin/python scripts/brand.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).resolve().parent.parent / "custom_components/hashgrid/brand"
DARK = (24, 32, 48, 255)
ORANGE = (247, 147, 26, 255)
YELLOW = (255, 236, 64, 255)
LIGHT = (232, 234, 240, 255)
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def icon(size: int) -> Image.Image:
    """The icon, ``size`` pixels square."""
    big = size * 4
    im = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    u = big / 256  # the design is on a 256 grid
    d.rounded_rectangle((8 * u, 8 * u, 248 * u, 248 * u), radius=48 * u, fill=DARK)
    w = 22 * u
    for x in (92, 164):
        d.rounded_rectangle(
            ((x - 11) * u, 40 * u, (x - 11) * u + w, 216 * u), radius=w / 2, fill=ORANGE
        )
    for y in (92, 164):
        d.rounded_rectangle(
            (40 * u, (y - 11) * u, 216 * u, (y - 11) * u + w), radius=w / 2, fill=ORANGE
        )
    bolt = [(150, 30), (88, 140), (124, 140), (104, 226), (170, 112), (134, 112)]
    outline = [(x * u, y * u) for x, y in bolt]
    d.polygon(outline, fill=YELLOW, outline=DARK, width=int(8 * u))
    d.polygon(outline, fill=YELLOW)
    return im.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int, ink: tuple[int, int, int, int] = DARK) -> Image.Image:
    """The icon and the name, ``height`` pixels high (``ink``: the "Hash")."""
    big = height * 4
    font = ImageFont.truetype(FONT, int(big * 0.5))
    text = "HashGrid"
    left, top, right, bottom = font.getbbox(text)
    width = big + int(big * 0.15) + (right - left) + int(big * 0.1)
    im = Image.new("RGBA", (width, big), (0, 0, 0, 0))
    im.paste(icon(big), (0, 0))
    d = ImageDraw.Draw(im)
    x = big + int(big * 0.15)
    y = (big - (bottom - top)) // 2 - top
    d.text((x, y), "Hash", font=font, fill=ink)
    d.text((x + font.getlength("Hash"), y), "Grid", font=font, fill=ORANGE)
    return im.resize((width // 4, height), Image.Resampling.LANCZOS)


def main() -> None:
    """Write the images."""
    icon(256).save(BRAND / "icon.png")
    icon(512).save(BRAND / "icon@2x.png")
    logo(128).save(BRAND / "logo.png")
    logo(256).save(BRAND / "logo@2x.png")
    logo(128, LIGHT).save(BRAND / "dark_logo.png")
    logo(256, LIGHT).save(BRAND / "dark_logo@2x.png")


if __name__ == "__main__":
    main()
