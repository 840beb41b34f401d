"""Image input and output for LesionLens (CLI, GUI and trainer all go through here).

Reading never lets a decoder's own exception escape: every failure becomes an
:class:`ImageReadError` whose message names the file and says what is wrong, so callers can show it
as is. Writing is atomic (temp file in the same folder, fsync, ``os.replace``) so a crash or a full
disk never leaves a half-written mask where a reader (or the next run's resume logic) would find it.

No Pillow global (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) is changed, so reads are safe to run
from several threads. The pixel limit is enforced from the header before any pixel is decoded.
"""

import contextlib
import errno
import io
import os
import stat
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import BmpImagePlugin, ExifTags, Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
#: Image formats clinicians have but LesionLens does not read. Folder scans list them too, so each gets a clear
#: "not supported" message (DICOM, HEIC, GIF...) instead of being skipped in silence.
UNSUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".dcm", ".dicom", ".gif", ".heic", ".heif", ".webp"})
#: The largest image any reader decodes (the batch and the CLI may be given another limit).
MAX_MEGAPIXELS = 120.0
_EXPORT_HINT = "export the image as JPEG, PNG or TIFF"
_CV_LOG_LOCK = threading.Lock()
# Pillow warns (on stderr) about a TIFF's damaged EXIF block; the file is still read, or refused with our message.
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning, module="PIL.TiffImagePlugin")
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
# Pillow's plugin classes are called directly (instead of Image.open) so that Pillow's own
# decompression-bomb check, tuned to its global MAX_IMAGE_PIXELS, does not pre-empt ours.
_FORMATS = (  # (name, magic prefixes, lazy header parser)
    ("JPEG", (b"\xff\xd8\xff",), JpegImagePlugin.jpeg_factory),
    ("PNG", (b"\x89PNG\r\n\x1a\n",), PngImagePlugin.PngImageFile),
    ("BMP", (b"BM",), BmpImagePlugin.BmpImageFile),
    ("TIFF", tuple(TiffImagePlugin.PREFIXES), TiffImagePlugin.TiffImageFile),
)


class ImageReadError(Exception):
    """An image (or mask) could not be read; ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(path, reason)  # args kept so the error pickles across worker processes
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnsupportedImageError(ImageReadError):
    """A recognised format LesionLens does not read (DICOM, HEIC, GIF, WebP...)."""


class OutputWriteError(Exception):
    """A file could not be written; the destination is left as it was."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(path, reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True if the suffix is one we read (case-insensitive); used to filter folder listings."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def is_unsupported_image_path(path: str | os.PathLike[str]) -> bool:
    """True for image formats we refuse with a message (DICOM, GIF, HEIC, WebP), by suffix."""
    return Path(path).suffix.lower() in UNSUPPORTED_EXTENSIONS


# --------------------------------------------------------------------------------------------- reading
@dataclass
class _Header:
    fmt: str
    size: tuple[int, int]  # (width, height) as stored, before EXIF orientation
    orientation: int  # EXIF orientation 1-8
    image: Image.Image | None  # lazy Pillow image; None for TIFFs only OpenCV can decode


@contextmanager
def _reading(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading; turn anything raised inside into ImageReadError."""
    if path.is_dir():  # checked first: on Windows opening a folder gives PermissionError
        raise ImageReadError(path, "is a folder")
    try:
        # Non-blocking open: a FIFO named .jpg (or /dev/stdin) must not hang the batch; it is refused below.
        fp = open(path, "rb", opener=_open_nonblocking)  # noqa: SIM115 - closed below; module-level name for tests
    except FileNotFoundError as e:
        raise ImageReadError(path, "no such file") from e
    except IsADirectoryError as e:
        raise ImageReadError(path, "is a folder") from e
    except PermissionError as e:
        raise ImageReadError(path, "permission denied") from e
    except (OSError, ValueError) as e:
        raise ImageReadError(path, f"cannot open file ({getattr(e, 'strerror', None) or e})") from e
    try:
        with fp:
            if not stat.S_ISREG(os.fstat(fp.fileno()).st_mode):
                raise ImageReadError(path, "not a regular file (a pipe, device or socket)")
            yield fp
    except ImageReadError:
        raise
    except MemoryError as e:
        raise ImageReadError(path, "not enough memory to decode") from e
    except Exception as e:  # decoders raise ValueError, SyntaxError, struct.error... on bad input
        raise ImageReadError(path, f"cannot read image ({type(e).__name__}: {e})") from e


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _header(fp: BinaryIO, path: Path) -> _Header:
    """Identify the file by content (not suffix) and parse its header without decoding pixels."""
    prefix = fp.read(132)
    if not prefix:
        raise ImageReadError(path, "file is empty (0 bytes)")
    if path.suffix.lower() in (".dcm", ".dicom") or prefix[128:132] == b"DICM":
        raise UnsupportedImageError(path, f"DICOM files are not supported yet; {_EXPORT_HINT}")
    fmt, factory = next(((n, f) for n, magic, f in _FORMATS if prefix.startswith(magic)), ("", None))
    if factory is None:
        raise _unrecognised(fp, path, prefix)
    fp.seek(0)
    try:
        im = factory(fp, str(path))
    except MemoryError:
        raise
    except Image.DecompressionBombError as e:  # only multi-picture JPEGs check while opening
        raise ImageReadError(path, "image is too large to decode safely") from e
    except Exception as e:
        if fmt == "TIFF":  # e.g. float RGB: Pillow has no mode for it, OpenCV decodes it
            return _tiff_header(fp, path)
        raise ImageReadError(path, f"truncated or corrupt {fmt}") from e
    try:
        # Base-class getexif: PngImageFile's override decodes the whole image to look for an eXIf chunk
        # after IDAT, which would defeat the size check. Pillow writes eXIf before IDAT, so it is seen.
        orientation = int(Image.Image.getexif(im).get(ExifTags.Base.Orientation, 1))
    except Exception:  # broken EXIF must not make an otherwise fine image unreadable
        orientation = 1
    # Recent Pillow reports TIFF sizes already rotated; take the stored size so all formats agree.
    size = (int(im.tag_v2[256]), int(im.tag_v2[257])) if fmt == "TIFF" else im.size
    return _Header(fmt, size, orientation if 1 <= orientation <= 8 else 1, im)


def _tiff_header(fp: BinaryIO, path: Path) -> _Header:
    """Size and orientation straight from the first IFD, for TIFFs Pillow cannot open."""
    try:
        fp.seek(0)
        ifh = fp.read(16)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh if ifh[2] == 43 else ifh[:8])
        fp.seek(ifd.next)
        ifd.load(fp)
        size = (int(ifd[256]), int(ifd[257]))
        orientation = int(ifd.get(274, 1))
    except Exception as e:
        raise ImageReadError(path, "truncated or corrupt TIFF") from e
    return _Header("TIFF", size, orientation if 1 <= orientation <= 8 else 1, None)


def _unrecognised(fp: BinaryIO, path: Path, prefix: bytes) -> ImageReadError:
    if prefix[4:8] == b"ftyp" and prefix[8:12] in _HEIF_BRANDS:
        return UnsupportedImageError(path, f"HEIC/HEIF images are not supported yet; {_EXPORT_HINT}")
    try:
        fp.seek(0)
        fmt = Image.open(fp).format  # lazy: only identifies, to give a precise message
    except Exception:
        return ImageReadError(path, "not an image (unrecognised format)")
    return UnsupportedImageError(path, f"unsupported format {fmt}; {_EXPORT_HINT}")


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Reduce bit depth. 16-bit: ``>> 8`` (same as Pillow's own 16-bit RGB path; 257*v maps back to v).
    32-bit ints are taken as 16-bit data. Float: NaN/inf -> 0, then ``*255`` if the maximum is <= 1 (0-1
    data), otherwise clipped to 0-255 as is."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype.kind == "f":
        a = np.where(np.isfinite(a), a, 0).astype(np.float32)
        if a.max() <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if a.dtype.itemsize == 1:
        return np.clip(a, 0, 255).astype(np.uint8)
    return (np.clip(a, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)


def _pil_pixels(im: Image.Image) -> np.ndarray:
    """HxW (grey) or HxWx3 (RGB) uint8. Alpha is dropped, not composited: dermoscopy images are opaque
    and compositing over black or white would invent colours."""
    mode = im.mode
    if mode in ("L", "RGB") or mode.startswith("I") or mode == "F":
        return _to_uint8(np.array(im))
    if mode == "LA":
        return np.array(im)[..., 0]
    if mode in ("RGBA", "RGBX"):
        return np.array(im)[..., :3]
    return np.array(im.convert("RGB"))  # 1, P (incl. transparency), PA, CMYK, YCbCr, LAB...


@contextmanager
def _opencv_quiet() -> Iterator[None]:
    """No OpenCV/libtiff log lines on stderr while decoding (a truncated TIFF strip prints four): a failure
    becomes our ImageReadError, which says it plainly."""
    with _CV_LOG_LOCK:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            yield
        finally:
            cv2.utils.logging.setLogLevel(level)


def _cv2_pixels(fp: BinaryIO) -> np.ndarray | None:
    """Fallback decoder for TIFFs Pillow cannot handle (float RGB, some compressions); None if it fails."""
    fp.seek(0)
    try:
        with _opencv_quiet():
            a = cv2.imdecode(np.frombuffer(fp.read(), np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    except cv2.error:
        return None
    if a is None or a.size == 0:
        return None
    a = _to_uint8(a)
    if a.ndim == 3:
        a = a[..., 0] if a.shape[2] < 3 else a[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    return a


_ORIENT = {  # EXIF orientation -> transform, same result as PIL.ImageOps.exif_transpose
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _decode(path: str | os.PathLike[str], max_megapixels: float, draft: int = 0) -> np.ndarray:
    """The pixels, orientation applied. ``draft``: a JPEG may decode at a reduced scale (1/2 to 1/8, by DCT
    scaling), as long as both sides stay at least ``draft`` pixels."""
    path = Path(path)
    with _reading(path) as fp:
        hdr = _header(fp, path)
        w, h = hdr.size
        if w <= 0 or h <= 0:
            raise ImageReadError(path, f"image has no pixels ({w}x{h})")
        if w * h > max_megapixels * 1e6:
            mp = f"{w * h / 1e6:.1f} megapixels, over the limit of {max_megapixels:g} megapixels"
            raise ImageReadError(path, f"image is {w}x{h} = {mp}")
        try:
            if hdr.image is None:
                a = _cv2_pixels(fp)
                if a is None:
                    raise ImageReadError(path, "truncated or corrupt TIFF")
            else:
                if draft and hdr.fmt == "JPEG":
                    hdr.image.draft(hdr.image.mode, (draft, draft))
                im = _load(fp, path, hdr)
                if hdr.fmt == "TIFF" and ExifTags.Base.Orientation not in im.tag_v2:
                    hdr.orientation = 1  # Pillow >= 12 applies TIFF orientation on load itself
                a = _pil_pixels(im)
        except ImageReadError:
            raise
        except MemoryError as e:
            raise ImageReadError(path, f"not enough memory to decode a {w}x{h} image") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageReadError(path, f"image is {w}x{h}, over Pillow's safety limit") from e
        except Exception as e:
            a = _cv2_pixels(fp) if hdr.fmt == "TIFF" else None  # TIFF variants Pillow cannot decode
            if a is None:
                raise ImageReadError(path, f"truncated or corrupt {hdr.fmt}") from e
    return _ORIENT[hdr.orientation](a) if hdr.orientation in _ORIENT else a


def _load(fp: BinaryIO, path: Path, hdr: _Header) -> Image.Image:
    im = hdr.image
    assert im is not None
    if hdr.fmt == "PNG":  # Pillow skips IDAT CRCs when decoding; verify() checks every chunk
        im.verify()
        fp.seek(0)
        im = PngImagePlugin.PngImageFile(fp, str(path))
    im.load()  # ImageFile.LOAD_TRUNCATED_IMAGES is left False, so truncated data raises here
    return im


def read_image(path: str | os.PathLike[str], *, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """Read a JPEG, PNG, BMP or TIFF as an RGB uint8 HxWx3 C-contiguous array, EXIF orientation applied.

    The format is detected from content, not suffix. Alpha is dropped; 16-bit data is reduced with
    ``>> 8``; float data is scaled by 255 if it lies in 0-1, else clipped to 0-255. Multi-page TIFFs
    (and multi-picture JPEGs) give their first page. Images over ``max_megapixels`` are refused from
    the header, before anything is allocated. Raises ImageReadError (UnsupportedImageError for DICOM,
    HEIC, GIF...) and nothing else.
    """
    a = _decode(path, max_megapixels)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def read_mask(path: str | os.PathLike[str], *, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """Read a ground-truth mask as bool HxW (pixel > 127 is lesion, so JPEG-compressed masks from old
    ISIC releases work; multi-channel masks use their first channel)."""
    a = _decode(path, max_megapixels)
    if a.ndim == 3:
        a = a[..., 0]
    return np.ascontiguousarray(a > 127)


def read_thumbnail(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """A preview of the image, RGB uint8, its longer side at most ``size``: read like :func:`read_image` (same
    formats, pixel limit and errors), but a JPEG decodes at a reduced scale, so a 24-megapixel photo takes
    milliseconds."""
    a = _decode(path, MAX_MEGAPIXELS, draft=2 * size)
    height, width = a.shape[:2]
    scale = size / max(height, width)
    if scale < 1:
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        a = cv2.resize(np.ascontiguousarray(a), shape, interpolation=cv2.INTER_AREA)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation 5-8 swaps them), from the header only.

    Same errors as read_image, except that no megapixel limit applies (nothing is decoded)."""
    path = Path(path)
    with _reading(path) as fp:
        hdr = _header(fp, path)
    w, h = hdr.size
    return (h, w) if hdr.orientation >= 5 else (w, h)


# --------------------------------------------------------------------------------------------- writing
_WRITE_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "folder does not exist",
    errno.EISDIR: "is a folder",
    errno.ENAMETOOLONG: "file name too long",
}


def write_temp_file(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> Path:
    """Write ``data`` to a new temp file beside ``path`` (``.<name>.<random>.tmp``: same file system, hidden, not
    ``*.png``), flushed to disk; returns the temp file's path. Nothing is left behind on failure; OSErrors become
    OutputWriteError with a plain reason ("disk full", "permission denied", ...).

    ``mode`` is filtered by the umask, as for ``open()``: files in the user's own folders follow their umask;
    LesionLens's private files (autosaves, settings) pass 0o600."""
    path = Path(path)
    tmp = path.with_name(f".{path.name[:100]}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags, mode)  # mode & ~umask: with the default 0o666 the same as a plain open()
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputWriteError(path, write_reason(e)) from e
        raise
    return tmp


def write_reason(error: OSError) -> str:
    """A plain reason for a failed write: "disk full", "permission denied", "file name too long"..."""
    return _WRITE_REASONS.get(error.errno or 0, error.strerror or str(error))


def sync_folder(folder: Path) -> None:
    """Persist renames in ``folder`` (POSIX only; best effort)."""
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` atomically: readers see the old file or the complete new one.

    The data goes to a temp file (see write_temp_file), then ``os.replace`` puts it in place. The temp file is
    removed on any failure, and OSErrors become OutputWriteError with a plain reason. ``mode``: see write_temp_file.
    """
    path = Path(path)
    tmp = write_temp_file(path, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputWriteError(path, write_reason(e)) from e
        raise
    sync_folder(path.parent)
    return path


def _encode(array: np.ndarray, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **params)  # no pnginfo/exif/dpi: no metadata written
    return buf.getvalue()


def encode_mask(mask: np.ndarray) -> bytes:
    """A mask as the bytes of an 8-bit single-channel PNG, 0 = skin, 255 = lesion (any nonzero input is lesion);
    ValueError on a bad shape."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mask must be a non-empty HxW array, got shape {m.shape}")
    return _encode((m != 0).astype(np.uint8) * 255, "PNG")


def encode_grey(values: np.ndarray) -> bytes:
    """A uint8 HxW array as the bytes of an 8-bit greyscale PNG (e.g. a probability map scaled to 0-255)."""
    a = np.asarray(values)
    if a.dtype != np.uint8 or a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a uint8 HxW array, got {a.dtype} {a.shape}")
    return _encode(a, "PNG")


def write_mask(path: str | os.PathLike[str], mask: np.ndarray, *, mode: int = 0o666) -> Path:
    """Write a mask as an 8-bit single-channel PNG, 0 = skin, 255 = lesion (any nonzero input is lesion).

    Atomic (see atomic_write_bytes); raises OutputWriteError on I/O failure, ValueError on a bad shape."""
    return atomic_write_bytes(path, encode_mask(mask), mode=mode)


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, *, quality: int = 95) -> Path:
    """Write an RGB uint8 HxWx3 image as PNG or JPEG (chosen by suffix), atomically, without metadata.

    JPEGs use 4:4:4 chroma so thin coloured contours stay sharp. An unsupported suffix raises
    OutputWriteError (it usually comes from a user-typed name); a bad array raises ValueError."""
    return atomic_write_bytes(path, encode_image(path, rgb, quality=quality))


def encode_image(path: str | os.PathLike[str], rgb: np.ndarray, *, quality: int = 95, consume: bool = False) -> bytes:
    """The bytes write_image would write to ``path`` (PNG or JPEG by its suffix), without metadata.

    ``consume``: the caller gives ``rgb`` up; it is turned into BGR in place and encoded by OpenCV, so a 120-megapixel
    picture is encoded without the 4-bytes-a-pixel copy Pillow makes of it.
    """
    path = Path(path)
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.size == 0:
        raise ValueError(f"expected an RGB uint8 HxWx3 array, got {a.dtype} {a.shape}")
    suffix = path.suffix.lower()
    if consume and a.flags.writeable and a.flags.c_contiguous and suffix in (".png", ".jpg", ".jpeg"):
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be 1-100, got {quality}")
        cv2.cvtColor(a, cv2.COLOR_RGB2BGR, dst=a)
        jpeg = [cv2.IMWRITE_JPEG_QUALITY, quality]
        jpeg += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]  # no chroma subsampling
        ok, encoded = cv2.imencode(".png", a) if suffix == ".png" else cv2.imencode(".jpg", a, jpeg)
        if not ok:
            raise OutputWriteError(path, "could not encode the image")
        return encoded.tobytes()
    if suffix == ".png":
        data = _encode(a, "PNG")
    elif suffix in (".jpg", ".jpeg"):
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be 1-100, got {quality}")
        data = _encode(a, "JPEG", quality=quality, subsampling=0)
    else:
        raise OutputWriteError(path, f"unsupported file type {suffix or '(none)'!r}; use .png, .jpg or .jpeg")
    return data
