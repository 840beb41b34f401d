"""Helpers of the reliability tests (docs/RELIABILITY.md): every kind of bad (and odd but valid) input a clinician's
folder may hold, generated on the fly, and fault injection (unreadable files, no network).

Nothing is committed as a binary: each file is made here, a few hundred bytes to a few kilobytes, so the tests stay
fast. ``odd_valid_files`` must all be segmented; ``bad_files`` must each give one clear error naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from segmentation import imageio

DICOM_BYTES = b"\0" * 128 + b"DICM" + bytes(range(256))
ACCENTED = "Mélanome à vérifier n°2 (côté).jpg"
NON_LATIN = ("病变 皮肤.png", "родинка спина.jpeg", "شامة.bmp")
LOCKED = "locked.jpg"  # made unreadable by chmod 000 (a real user) or by deny_reading (root)


def _jpeg(array: np.ndarray, **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=92, **params)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png_header(width: int = 40000, height: int = 40000) -> bytes:
    """A 1x1 PNG whose header (CRC fixed up) declares ``width`` x ``height``: refused from the header alone."""
    data = bytearray(_png(Image.new("RGB", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def png_with_broken_crc(rgb: np.ndarray) -> bytes:
    data = bytearray(_png(Image.fromarray(rgb)))
    position = data.index(b"IDAT")  # the chunk type; its payload follows
    data[position + 4 + 10] ^= 0x01  # a bit flipped in the compressed pixels, the CRC left as it was
    return bytes(data)


def odd_valid_files(folder: Path, rgb_image: Callable[..., np.ndarray]) -> dict[Path, tuple[int, int]]:
    """Unusual files LesionLens must read: path -> (height, width) of the image as displayed (EXIF applied)."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = rgb_image(30, 40, seed=11)
    files: dict[Path, tuple[int, int]] = {}

    def save(name: str, image: Image.Image | bytes, size: tuple[int, int], **params: object) -> None:
        path = folder / name
        if isinstance(image, bytes):
            path.write_bytes(image)
        else:
            image.save(path, **params)
        files[path] = size

    save("grey.png", Image.fromarray(rgb).convert("L"), (30, 40))
    save("rgba.png", Image.fromarray(np.dstack([rgb, np.full((30, 40), 128, np.uint8)])), (30, 40))
    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), (30, 40), quality=92)
    save("palette.png", Image.fromarray(rgb).quantize(16), (30, 40))
    save("deep 16-bit.png", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), (30, 40))
    ok, tiff16 = cv2.imencode(".tif", rgb[..., ::-1].astype(np.uint16) * 257)
    assert ok
    save("deep 16-bit tiff.tif", tiff16.tobytes(), (30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display: stored 40 wide x 30 high, shown 30 wide x 40 high
    save("exif rotated.jpg", _jpeg(rgb, exif=exif), (40, 30))
    save("one pixel.png", Image.fromarray(rgb[:1, :1]), (1, 1))
    save("strip.png", Image.fromarray(np.tile(rgb[:20, :1], (1, 5000, 1))), (20, 5000))
    pages = [Image.fromarray(rgb), Image.new("RGB", (40, 30), (0, 0, 255))]
    save("multipage.tif", pages[0], (30, 40), save_all=True, append_images=pages[1:])
    save(ACCENTED, _jpeg(rgb), (30, 40))
    for name in NON_LATIN:
        save(name, Image.fromarray(rgb), (30, 40))
    return files


#: name -> a fragment of the reason its error must give. ``locked.jpg`` is a good JPEG that is unreadable only once
#: chmod 000 (as a user) or :func:`deny_reading` (root); the two links point to themselves and to nothing.
BAD_REASONS: dict[str, str] = {
    "empty.jpg": "file is empty (0 bytes)",
    "truncated.jpg": "truncated or corrupt JPEG",
    "broken checksum.png": "truncated or corrupt PNG",
    "notes.jpg": "not an image",
    "huge.png": "40000x40000 = 1600.0 megapixels, over the limit of 120 megapixels",
    "animated.gif": "unsupported format GIF",
    "scan.dcm": "DICOM files are not supported yet",
    "pacs export.jpg": "DICOM files are not supported yet",
    LOCKED: "permission denied",
    "loop.jpg": "cannot open file",  # "(Too many levels of symbolic links)" on Linux
    "dangling.jpg": "no such file",
}
LINKS = {"loop.jpg": "loop.jpg", "dangling.jpg": "gone.jpg"}


def bad_file_content(name: str, rgb_image: Callable[..., np.ndarray]) -> bytes:
    """The bytes of one of the BAD_REASONS files (not the links)."""
    if name == "animated.gif":
        frames = [Image.new("P", (8, 8), index) for index in range(3)]
        gif = io.BytesIO()
        frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
        return gif.getvalue()
    jpeg = _jpeg(rgb_image(60, 80, seed=5))
    return {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "broken checksum.png": png_with_broken_crc(rgb_image(30, 40, seed=6)),
        "notes.jpg": b"Patient 12: re-check the lesion on the left shoulder.\n" * 3,
        "huge.png": huge_png_header(),
        "scan.dcm": DICOM_BYTES,
        "pacs export.jpg": DICOM_BYTES,
        LOCKED: jpeg,
    }[name]


def make_bad_file(path: Path, name: str, rgb_image: Callable[..., np.ndarray]) -> Path:
    """Write the bad file ``name`` (a BAD_REASONS key) at ``path``; a link keeps its kind (loop or dangling)."""
    if name in LINKS:
        target = path.name if name == "loop.jpg" else LINKS[name]
        try:
            path.symlink_to(target)
        except OSError:
            pytest.skip("symbolic links cannot be made here")
    else:
        path.write_bytes(bad_file_content(name, rgb_image))
    return path


def bad_files(folder: Path, rgb_image: Callable[..., np.ndarray]) -> dict[Path, str]:
    """Every BAD_REASONS file in ``folder``: path -> the fragment its error must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    return {make_bad_file(folder / name, name, rgb_image): reason for name, reason in BAD_REASONS.items()}


def deny_reading(monkeypatch: pytest.MonkeyPatch, paths: Iterable[Path]) -> None:
    """Opening ``paths`` for reading raises the real PermissionError, as for a chmod 000 file of someone else
    (root reads anything, so CI needs this). Patches ``open`` as segmentation.imageio sees it."""
    denied = {os.path.abspath(p) for p in paths}

    def guarded_open(file, *args, **kwargs):
        if os.path.abspath(file) in denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(imageio, "open", guarded_open, raising=False)  # module-level name shadows the builtin


def file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links recorded by target, not followed), hidden ones included."""
    hashes = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            hashes[key] = "link -> " + os.readlink(path)
        elif path.is_file():
            hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def temp_files(folder: Path) -> list[str]:
    """Temporary files of atomic writes (``.*.tmp``) anywhere under ``folder``."""
    return [name for _root, _dirs, files in os.walk(folder) for name in files if name.endswith(".tmp")]


def block_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way Python opens a connection records the attempt and fails, as on a machine without a network;
    returns the list of attempts (empty when nothing tried)."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable:
        def call(*args, **kwargs):
            attempts.append(f"{name}{args[1:2] or args[:1]}")
            raise OSError(errno.ENETUNREACH, "Network is unreachable (blocked by the test)")

        return call

    for name in ("connect", "connect_ex", "sendto", "sendmsg"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    return attempts
