"""Draw HashGrid's brand icon (custom_components/hashgrid/brand/icon.png, 256x256)."""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
OUT = (
    Path(__file__).resolve().parent.parent / "custom_components/hashgrid/brand/icon.png"
)


def draw() -> Image.Image:
    """A hash grid (#) in amber on a dark rounded tile, crossed by a bolt."""
    scale = 4  # draw large, then downsample for smooth edges
    s = SIZE * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=56 * scale, fill=(24, 32, 48, 255))
    amber = (247, 147, 26, 255)  # bitcoin orange
    w = 22 * scale
    for x in (92, 164):
        d.rounded_rectangle(
            (x * scale - w // 2, 40 * scale, x * scale + w // 2, 216 * scale),
            radius=w // 2,
            fill=amber,
        )
    for y in (92, 164):
        d.rounded_rectangle(
            (40 * scale, y * scale - w // 2, 216 * scale, y * scale + w // 2),
            radius=w // 2,
            fill=amber,
        )
    bolt = [
        (150, 18),
        (70, 140),
        (122, 140),
        (100, 238),
        (190, 104),
        (136, 104),
        (166, 18),
    ]
    d.polygon(
        [(x * scale, y * scale) for x, y in bolt],
        fill=(255, 236, 64, 255),
        outline=(24, 32, 48, 255),
        width=8 * scale,
    )
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT, optimize=True)
    print(OUT)
