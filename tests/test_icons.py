"""The app icon in the formats the bundle needs (drawn by scripts/make_icon.py): PNG, Windows .ico, macOS .icns."""

from __future__ import annotations

from PIL import Image

from segmentation.resources import app_icon_path

ICONS = app_icon_path().parent


def test_the_window_icon_is_a_square_png_with_transparent_corners() -> None:
    with Image.open(app_icon_path()) as icon:
        assert (icon.format, icon.mode, icon.size) == ("PNG", "RGBA", (512, 512))
        assert icon.getpixel((0, 0))[3] == 0
        assert icon.getpixel((256, 256))[3] == 255


def test_the_windows_icon_holds_the_small_and_large_sizes() -> None:
    with Image.open(ICONS / "lesionlens.ico") as icon:
        assert icon.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(icon.info["sizes"])


def test_the_macos_icon_holds_retina_sizes_up_to_1024_pixels() -> None:
    with Image.open(ICONS / "lesionlens.icns") as icon:
        assert icon.format == "ICNS"
        pixels = {width * scale for width, _height, scale in icon.info["sizes"]}
        assert {32, 256, 512, 1024} <= pixels
