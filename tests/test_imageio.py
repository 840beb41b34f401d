"""Tests for segmentation.imageio. Every file is generated in tmp_path; images are tiny so this runs fast."""

import errno
import io
import os
import pickle
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from segmentation import imageio
from segmentation.imageio import (
    SUPPORTED_EXTENSIONS,
    ImageReadError,
    OutputWriteError,
    UnsupportedImageError,
    atomic_write_bytes,
    is_image_path,
    read_image,
    read_image_size,
    read_mask,
    write_image,
    write_mask,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _rgb(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, im: Image.Image | np.ndarray, **kw) -> Path:
    (im if isinstance(im, Image.Image) else Image.fromarray(im)).save(path, **kw)
    return path


def _expect(path: Path, fragment: str, cls: type[ImageReadError] = ImageReadError, **kw) -> ImageReadError:
    with pytest.raises(cls) as info:
        read_image(path, **kw)
    err = info.value
    assert err.path == Path(path)
    assert path.name in str(err), "every message names the file"
    assert fragment in err.reason
    assert str(err) == f"{path}: {err.reason}"
    return err


def _check_rgb(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert a.shape == (*shape, 3)
    assert a.dtype == np.uint8
    assert a.flags.c_contiguous and a.flags.writeable


def _png_chunks(data: bytes) -> list[tuple[bytes, int]]:
    """(type, offset of chunk start) for each chunk of a PNG."""
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], pos))
        pos += 12 + length
    return out


# --------------------------------------------------------------------------------------- formats/modes
def test_rgb_jpeg_roundtrip(tmp_path: Path) -> None:
    src = np.zeros((24, 32, 3), np.uint8)
    src[:] = (200, 60, 30)
    a = read_image(_save(tmp_path / "a.jpg", src, quality=95))
    _check_rgb(a, (24, 32))
    assert np.abs(a.astype(int) - src).max() <= 4


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "1", "P"])
def test_pixel_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    src = _rgb()
    im = Image.fromarray(src)
    if mode == "RGBA":  # fully transparent pixels keep their colour: alpha is dropped, not composited
        im = Image.fromarray(np.dstack([src, np.zeros(src.shape[:2], np.uint8)]))
    elif mode != "P":
        im = im.convert(mode)
    else:
        im = im.quantize(8)
    a = read_image(_save(tmp_path / f"{mode}.png", im))
    _check_rgb(a, (24, 32))
    assert np.array_equal(a, np.array(im.convert("RGB")))


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.fromarray(_rgb()).quantize(4)
    a = read_image(_save(tmp_path / "p.png", im, transparency=0))
    assert np.array_equal(a, np.array(im.convert("RGB")))


def test_cmyk_jpeg(tmp_path: Path) -> None:
    a = read_image(_save(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 12), (0, 255, 255, 0))))
    _check_rgb(a, (12, 16))
    r, g, b = a[6, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_16bit_grey_png(tmp_path: Path) -> None:
    src = np.array([[0, 257 * 128, 65535, 300]], np.uint16)
    a = read_image(_save(tmp_path / "g16.png", src))
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
    assert a[0, :, 0].tolist() == [0, 128, 255, 1]
    assert np.array_equal(a[..., 0], a[..., 2])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_is_red_where_red(tmp_path: Path, suffix: str) -> None:
    bgr = np.zeros((6, 8, 3), np.uint16)
    bgr[..., 2] = 65535  # OpenCV is BGR: channel 2 is red
    bgr[..., 0] = 257 * 10
    assert cv2.imwrite(str(tmp_path / f"rgb16{suffix}"), bgr)
    a = read_image(tmp_path / f"rgb16{suffix}")
    _check_rgb(a, (6, 8))
    assert a[0, 0].tolist() == [255, 0, 10]


def test_16bit_grey_tiff(tmp_path: Path) -> None:
    a = read_image(_save(tmp_path / "g16.tif", np.full((5, 4), 257 * 77, np.uint16)))
    _check_rgb(a, (5, 4))
    assert (a == 77).all()


def test_float_tiff(tmp_path: Path) -> None:
    unit = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)  # 0-1 data is scaled by 255
    assert read_image(_save(tmp_path / "f1.tif", unit))[0, :, 0].tolist() == [0, 128, 255, 0]
    wide = np.array([[-5.0, 100.0, 300.0]], np.float32)  # otherwise clipped to 0-255
    assert read_image(_save(tmp_path / "f2.tif", wide))[0, :, 0].tolist() == [0, 100, 255]


def test_float_rgb_tiff_uses_opencv_fallback(tmp_path: Path) -> None:
    bgr = np.zeros((4, 5, 3), np.float32)
    bgr[..., 2] = 1.0
    assert cv2.imwrite(str(tmp_path / "f3.tif"), bgr)
    assert read_image(tmp_path / "f3.tif")[0, 0].tolist() == [255, 0, 0]


def test_bmp_tiny_and_strip(tmp_path: Path) -> None:
    src = _rgb(7, 9)
    assert np.array_equal(read_image(_save(tmp_path / "a.bmp", src)), src)
    assert np.array_equal(read_image(_save(tmp_path / "one.png", src[:1, :1])), src[:1, :1])
    strip = read_image(_save(tmp_path / "strip.png", np.zeros((20, 5000, 3), np.uint8)))
    _check_rgb(strip, (20, 5000))


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    src = np.zeros((20, 40, 3), np.uint8)
    src[:, :20], src[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    p = _save(tmp_path / "rot.jpg", src, exif=exif, quality=95)
    a = read_image(p)
    _check_rgb(a, (40, 20))  # rotated 90 degrees clockwise: left half goes to the top
    assert (np.abs(a[5:15].astype(int) - RED) < 40).all()
    assert (np.abs(a[25:35].astype(int) - BLUE) < 40).all()
    assert read_image_size(p) == (20, 40)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_every_orientation_matches_pillow(tmp_path: Path, orientation: int, suffix: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path / f"o{suffix}", _rgb(5, 7), exif=exif)
    with Image.open(p) as im:
        expected = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    assert np.array_equal(read_image(p), expected)
    assert read_image_size(p) == expected.shape[1::-1]


def test_multipage_tiff_gives_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (6, 4), c) for c in (RED, BLUE)]
    p = tmp_path / "multi.tif"
    pages[0].save(p, save_all=True, append_images=pages[1:])
    assert (read_image(p) == RED).all()


def test_unicode_and_spaces_in_names(tmp_path: Path) -> None:
    for name in ("lésion 01.jpg", "病变.png", "scan 1.tiff"):
        _check_rgb(read_image(_save(tmp_path / name, _rgb())), (24, 32))


# ------------------------------------------------------------------------------------------ refusals
def test_huge_header_refused_without_decoding(tmp_path: Path) -> None:
    data = bytearray((_save(tmp_path / "one.png", _rgb(1, 1))).read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 40000, 40000)
    data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))
    p = tmp_path / "huge.png"
    p.write_bytes(data)
    t0 = time.perf_counter()
    err = _expect(p, "image is 40000x40000 = 1600.0 megapixels, over the limit of 120 megapixels")
    assert time.perf_counter() - t0 < 1.0
    assert not isinstance(err, UnsupportedImageError)
    assert read_image_size(p) == (40000, 40000)  # header only: no limit


def test_custom_megapixel_limit(tmp_path: Path) -> None:
    p = _save(tmp_path / "a.png", _rgb(100, 100))
    _expect(p, "over the limit of 0.005 megapixels", max_megapixels=0.005)


def test_thumbnail_of_a_rotated_jpeg_decodes_at_reduced_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = np.zeros((1200, 1600, 3), np.uint8)
    src[:, :800], src[:, 800:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    p = _save(tmp_path / "big.jpg", src, exif=exif, quality=90)
    decoded: list[tuple[int, int]] = []
    real_pixels = imageio._pil_pixels
    monkeypatch.setattr(imageio, "_pil_pixels", lambda im: decoded.append(im.size) or real_pixels(im))
    a = imageio.read_thumbnail(p, 64)
    assert decoded == [(200, 150)]  # 1/8 scale: still at least twice the thumbnail on each side
    _check_rgb(a, (64, 48))  # rotated 90 degrees clockwise, like read_image
    assert (np.abs(a[5:27].astype(int) - RED) < 40).all()
    assert (np.abs(a[37:59].astype(int) - BLUE) < 40).all()


def test_thumbnail_of_a_small_grey_png_keeps_its_size(tmp_path: Path) -> None:
    p = _save(tmp_path / "grey.png", np.full((20, 30), 77, np.uint8))
    a = imageio.read_thumbnail(p, 64)
    _check_rgb(a, (20, 30))
    assert (a == 77).all()


def test_thumbnail_has_the_readers_pixel_limit(tmp_path: Path) -> None:
    data = bytearray((_save(tmp_path / "one.png", _rgb(1, 1))).read_bytes())
    data[16:24] = struct.pack(">II", 12000, 11000)  # 132 megapixels
    data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))
    p = tmp_path / "huge.png"
    p.write_bytes(data)
    with pytest.raises(ImageReadError, match="over the limit of 120 megapixels"):
        imageio.read_thumbnail(p, 64)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "scan 1.jpg").write_bytes(b"")
    _expect(tmp_path / "scan 1.jpg", "file is empty (0 bytes)")


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _save(tmp_path / "full.jpg", _rgb(64, 64)).read_bytes()
    (tmp_path / "half.jpg").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "half.jpg", "truncated or corrupt JPEG")


@pytest.mark.parametrize("where", ["payload", "crc"])
def test_png_with_bad_idat_crc(tmp_path: Path, where: str) -> None:
    data = bytearray(_save(tmp_path / "ok.png", _rgb()).read_bytes())
    pos = next(o for t, o in _png_chunks(bytes(data)) if t == b"IDAT")
    (length,) = struct.unpack(">I", data[pos : pos + 4])
    # A bit flipped in the IDAT payload (CRC left stale), or in the CRC itself: pixels intact, and
    # Pillow alone would decode it, but the file is damaged so it is refused like libpng would.
    data[pos + 8 + (10 if where == "payload" else length)] ^= 0x01
    (tmp_path / "bad.png").write_bytes(data)
    _expect(tmp_path / "bad.png", "truncated or corrupt PNG")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("patient notes, not a picture\n" * 5)
    _expect(tmp_path / "notes.jpg", "not an image")


def test_animated_gif_refused(tmp_path: Path) -> None:
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    _expect(p, "unsupported format GIF", UnsupportedImageError)
    assert not is_image_path(p)


@pytest.mark.parametrize("name", ["scan.dcm", "scan.jpg"])
def test_dicom_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)))
    _expect(tmp_path / name, "DICOM files are not supported yet", UnsupportedImageError)
    with pytest.raises(UnsupportedImageError):
        read_image_size(tmp_path / name)


def test_heic_refused(tmp_path: Path) -> None:
    (tmp_path / "phone.jpg").write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64)
    _expect(tmp_path / "phone.jpg", "HEIC", UnsupportedImageError)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.png", "no such file")
    (tmp_path / "dir.png").mkdir()
    _expect(tmp_path / "dir.png", "is a folder")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image_size(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="no such file"):
        read_mask(tmp_path / "nope.png")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = _save(tmp_path / "locked.png", _rgb())

    def deny(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    monkeypatch.setattr(imageio, "open", deny, raising=False)  # module-level name shadows the builtin
    _expect(p, "permission denied")


def test_errors_pickle(tmp_path: Path) -> None:
    for err in (ImageReadError(tmp_path / "a.png", "x"), UnsupportedImageError("b.dcm", "y")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.path == err.path
    out = pickle.loads(pickle.dumps(OutputWriteError("m.png", "disk full")))
    assert str(out) == "cannot write m.png: disk full"


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_fuzzed_files_never_raise_anything_else(tmp_path: Path, fmt: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rgb(16, 16)).save(buf, format=fmt)
    valid = buf.getvalue()
    rng = np.random.default_rng(1234)
    p = tmp_path / f"fuzz.{fmt.lower()}"
    for _ in range(200):
        data = bytearray(valid)
        kind = rng.integers(3)
        if kind == 0:  # overwrite a few bytes, half of the time within the headers
            for _ in range(rng.integers(1, 6)):
                span = 200 if rng.random() < 0.5 else len(data)
                data[int(rng.integers(span))] = rng.integers(256)
        elif kind == 1:
            data = data[: rng.integers(len(data))]
        else:
            pos = int(rng.integers(len(data)))
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8).tobytes()
        p.write_bytes(bytes(data))
        try:
            a = read_image(p, max_megapixels=0.05)  # small limit: a mutated header cannot cost much
        except ImageReadError:
            continue
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3


# -------------------------------------------------------------------------------------------- masks
def test_read_mask_thresholds_first_channel(tmp_path: Path) -> None:
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert read_mask(_save(tmp_path / "m.png", grey)).tolist() == [[False, False, True, True]]
    rgb = np.zeros((1, 2, 3), np.uint8)
    rgb[0, 0, 0] = 255
    rgb[0, 1, 1:] = 255  # not lesion: only the first channel counts
    assert read_mask(_save(tmp_path / "m_rgb.png", rgb)).tolist() == [[True, False]]


def test_read_jpeg_compressed_mask(tmp_path: Path) -> None:
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    got = read_mask(_save(tmp_path / "old_isic.jpg", m, quality=60))
    assert got.dtype == np.bool_ and got.shape == (32, 32)
    assert (got == (m > 0)).mean() > 0.97


@pytest.mark.parametrize("dtype_values", [(np.bool_, (0, 1)), (np.uint8, (0, 1)), (np.uint8, (0, 255))])
def test_write_mask_roundtrip(tmp_path: Path, dtype_values: tuple[type, tuple[int, int]]) -> None:
    dtype, (off, on) = dtype_values
    m = np.full((9, 13), off, dtype)
    m[2:5, 3:11] = on
    p = write_mask(tmp_path / "ISIC_001_segmentation.png", m)
    assert p == tmp_path / "ISIC_001_segmentation.png"
    with Image.open(p) as im:
        assert im.mode == "L" and im.size == (13, 9)
        stored = np.array(im)
    assert set(np.unique(stored).tolist()) == {0, 255}
    assert np.array_equal(stored == 255, m != 0)
    assert np.array_equal(read_mask(p), m != 0)
    assert [t for t, _ in _png_chunks(p.read_bytes())] == [b"IHDR", b"IDAT", b"IEND"]  # no metadata
    assert sorted(x.name for x in tmp_path.iterdir()) == [p.name]  # no temp file left


def test_write_mask_rejects_bad_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_mask(tmp_path / "m.png", np.zeros((4, 4, 3), np.uint8))


@pytest.mark.parametrize(
    ("target", "exc", "reason"),
    [
        ("fsync", OSError(errno.ENOSPC, "No space left on device"), "disk full"),
        ("replace", PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    ],
)
def test_failed_write_keeps_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, exc: OSError, reason: str
) -> None:
    p = tmp_path / "case_segmentation.png"
    p.write_bytes(b"previous mask")

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(OutputWriteError) as info:
        write_mask(p, np.ones((4, 4), bool))
    monkeypatch.undo()
    assert info.value.reason == reason and info.value.path == p
    assert p.name in str(info.value) and reason in str(info.value)
    assert p.read_bytes() == b"previous mask"
    assert [x.name for x in tmp_path.iterdir()] == [p.name]


def test_atomic_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputWriteError, match="folder does not exist"):
        atomic_write_bytes(tmp_path / "no" / "x.csv", b"a,b\n")


def test_write_image_png_and_jpeg(tmp_path: Path) -> None:
    src = _rgb(12, 10)
    png = write_image(tmp_path / "overlay.png", src)
    assert np.array_equal(read_image(png), src)
    assert [t for t, _ in _png_chunks(png.read_bytes())] == [b"IHDR", b"IDAT", b"IEND"]
    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (10, 200, 90)
    jpg = write_image(tmp_path / "overlay.JPG", flat, quality=90)
    assert np.abs(read_image(jpg).astype(int) - flat).max() <= 4
    assert b"Exif" not in jpg.read_bytes()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["overlay.JPG", "overlay.png"]


def test_write_image_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(OutputWriteError, match="unsupported file type"):
        write_image(tmp_path / "o.webp", _rgb())
    with pytest.raises(ValueError):
        write_image(tmp_path / "o.png", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_paths() -> None:
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"} == SUPPORTED_EXTENSIONS
    assert is_image_path("a/B.JPG") and is_image_path(Path("x.Tiff")) and not is_image_path("x.dcm")
