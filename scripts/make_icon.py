"""Draw the LesionLens app icon: a magnifier over skin, a lesion inside it outlined like the app's overlay.

Writes ``resources/icons/lesionlens.png`` (512 px; the window icon and the Linux bundle), ``lesionlens.ico``
(Windows) and ``lesionlens.icns`` (macOS). Pillow only, deterministic, so the committed files can be regenerated:

    .venv/bin/python scripts/make_icon.py
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
SIZE = 1024  # the largest macOS size (512 pt @2x); the PNG and the .ico are downsampled from it
SCALE = 2  # drawn at 2x and downsampled: smooth edges without an anti-aliasing renderer
BACKGROUND = (16, 76, 92)
RING = (245, 247, 248)
SKIN = (236, 200, 178)
LESION = (112, 66, 42)
LESION_CORE = (74, 40, 26)
BOUNDARY = (61, 220, 132)


def lesion_outline(cx: float, cy: float, radius: float, points: int = 240) -> list[tuple[float, float]]:
    """An irregular, slightly asymmetric blob: a circle modulated by a few low harmonics."""
    outline = []
    for i in range(points):
        t = 2 * math.pi * i / points
        r = radius * (1 + 0.10 * math.sin(3 * t + 0.4) + 0.06 * math.cos(5 * t + 1.1) + 0.04 * math.sin(2 * t))
        outline.append((cx + r * math.cos(t), cy + 0.9 * r * math.sin(t)))
    return outline


def draw_icon() -> Image.Image:
    n = SIZE * SCALE
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, n - 1, n - 1), radius=n * 0.2, fill=BACKGROUND)
    cx, cy, lens = n * 0.44, n * 0.44, n * 0.30
    handle = [(cx + lens * 0.75, cy + lens * 0.75), (n * 0.86, n * 0.86)]
    draw.line(handle, fill=RING, width=round(n * 0.10))
    draw.ellipse((handle[1][0] - n * 0.05,) * 2 + (handle[1][0] + n * 0.05,) * 2, fill=RING)
    draw.ellipse((cx - lens, cy - lens, cx + lens, cy + lens), fill=SKIN, outline=RING, width=round(n * 0.045))

    spot = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    spot_draw = ImageDraw.Draw(spot)
    spot_draw.polygon(lesion_outline(cx, cy, lens * 0.52), fill=LESION)
    spot_draw.polygon(lesion_outline(cx - lens * 0.08, cy + lens * 0.04, lens * 0.26), fill=LESION_CORE)
    image.alpha_composite(spot.filter(ImageFilter.GaussianBlur(n * 0.006)))
    outline = lesion_outline(cx, cy, lens * 0.60)
    draw.line([*outline, outline[0]], fill=BOUNDARY, width=round(n * 0.018), joint="curve")
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "icons")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    icon = draw_icon()
    icon.resize((512, 512), Image.Resampling.LANCZOS).save(args.out / "lesionlens.png", optimize=True)
    icon.save(args.out / "lesionlens.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    icon.save(args.out / "lesionlens.icns")
    for name in ("lesionlens.png", "lesionlens.ico", "lesionlens.icns"):
        print(args.out / name, (args.out / name).stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
