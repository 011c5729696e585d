"""Read and write PNG, JPEG, TIFF and BMP images as float tensors in [0, 1].

Conventions:
    * Pixels are float32 tensors of shape 1 x C x H x W holding the color (or
      band) channels only: C = 1 for gray, 3 for RGB (never BGR), any C for
      multi-band TIFF. Integer images are divided by 255 (8-bit) or 65535
      (16-bit); float TIFFs keep their values as stored (``bit_depth`` 32).
    * The alpha channel, when there is one, is not restored: it is carried
      through untouched as the original integer H x W numpy array.
    * Writes are atomic (temp file in the same folder, then ``os.replace``),
      never overwrite an input, and skip existing outputs unless asked.

Example:
    >>> img = read_image("in.png")                       # doctest: +SKIP
    >>> write_image("out.png", img.pixels, bit_depth=img.bit_depth,
    ...             alpha=img.alpha, protect=[img.path])  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import tifffile
import torch

from restore.errors import RestoreError
from restore.pixel_values import check_finite, check_unit_range

PathLike = str | os.PathLike
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

_TIFF = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAGIC = {
    ".png": (_PNG_SIGNATURE,),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".tif": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
    ".bmp": (b"BM",),
}
_FORMAT_NAME = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
_JPEG_QUALITY = 95
_ALPHA_EXTRASAMPLES = (1, 2)  # TIFF ExtraSamples: associated / unassociated alpha
_PNG_GRAY_TYPES = (0, 4)  # PNG IHDR color types: gray, gray + alpha
# In-memory images larger than this are refused from their header, before decoding (a 431 KB PNG can
# claim 20000 x 20000 pixels: 4.8 GB as float RGB). 268 Mpx = 16384 x 16384; big rasters stream instead.
MAX_PIXELS = 2**28
# Temp files of atomic writes: ``.NAME.restore-PID-TOKEN.tmp.EXT`` beside the output (PID: the writer's).
TEMP_MARK = ".restore-"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.restore-(?P<pid>\d+)-[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")


@dataclass
class ImageData:
    """An image as read from disk.

    Attributes:
        pixels: float32 tensor 1 x C x H x W, color channels only, in [0, 1]
            (float TIFFs: values as stored).
        alpha: the alpha channel as the original H x W numpy array, or None.
        bit_depth: 8, 16, or 32 for float TIFFs.
        path: the file it came from.
        value_range: the stored value read as 1.0 when ``read_image`` was given one (write
            the result back with it to keep the input's units), else None.
    """

    pixels: torch.Tensor
    alpha: np.ndarray | None
    bit_depth: int
    path: Path
    value_range: float | None = None  # the stored value that became 1.0, when one was given


# ---------------------------------------------------------------- numpy <-> torch


def _default_range(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise RestoreError(f"no default data_range for dtype {dtype}; pass data_range explicitly")


def from_numpy_image(array: np.ndarray, data_range: float | None = None) -> torch.Tensor:
    """Convert an H x W or H x W x C array to a float32 1 x C x H x W tensor.

    Args:
        array: uint8, uint16, other integer or float image, channels last.
        data_range: the value that maps to 1.0. Defaults to 255 for uint8,
            65535 for uint16 and 1.0 for floats; required for other dtypes
            (e.g. 4095 for 12-bit data stored in uint16 needs it explicitly).

    Returns:
        The image divided by ``data_range``, not clipped.
    """
    if not isinstance(array, np.ndarray):
        raise RestoreError(f"expected a numpy array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise RestoreError(f"expected an H x W or H x W x C array, got shape {array.shape}")
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.number)):
        raise RestoreError(f"expected a numeric image array, got dtype {array.dtype}")
    scale = _default_range(array.dtype) if data_range is None else float(data_range)
    if not scale > 0:
        raise RestoreError(f"data_range must be > 0, got {data_range}")
    chw = np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32)
    if scale != 1.0:
        chw /= np.float32(scale)
    return torch.from_numpy(chw)[None]


def to_numpy_image(
    x: torch.Tensor, dtype: np.dtype | type = np.float32, data_range: float | None = None
) -> np.ndarray:
    """Convert a 1 x C x H x W (or C x H x W) tensor to an H x W or H x W x C array.

    Args:
        x: image tensor, nominally in [0, 1].
        dtype: output dtype. Integer outputs are clipped to [0, 1], scaled by
            ``data_range`` and rounded to nearest; float outputs are only scaled.
        data_range: value 1.0 maps to; defaults to the integer dtype's maximum
            (255, 65535) or 1.0 for floats.

    Returns:
        H x W for one channel, else H x W x C.
    """
    if not isinstance(x, torch.Tensor):
        raise RestoreError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise RestoreError(f"expected a single image (batch size 1), got shape {tuple(x.shape)}")
        x = x[0]
    if x.ndim != 3:
        raise RestoreError(f"expected shape (1, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    dtype = np.dtype(dtype)
    arr = x.detach().to("cpu", torch.float32).numpy().transpose(1, 2, 0)
    if np.issubdtype(dtype, np.integer):
        scale = float(np.iinfo(dtype).max) if data_range is None else float(data_range)
        if not np.isfinite(arr).all():
            # Casting NaN to an integer is undefined: it would write a silently black image.
            raise RestoreError("image contains NaN or inf values; refusing to quantise it")
        out = np.clip(arr, 0.0, 1.0)  # a new array: never modify the caller's tensor
        out *= np.float32(scale)
        np.rint(out, out=out)
        arr = out.astype(dtype)
    else:
        scale = 1.0 if data_range is None else float(data_range)
        arr = (arr * np.float32(scale)).astype(dtype) if scale != 1.0 else arr.astype(dtype)
    return arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr)


# ------------------------------------------------------------------------ reading


def _check_readable(p: Path) -> str:
    """Return the lower-case extension, or raise for a missing / unusable path."""
    if not p.exists():
        raise RestoreError(f"{p}: file not found")
    if p.is_dir():
        raise RestoreError(f"{p}: is a directory, expected an image file")
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise RestoreError(
            f"{p}: unsupported image format {ext or '(no extension)'}; expected one of {', '.join(IMAGE_EXTENSIONS)}"
        )
    return ext


def _check_magic(p: Path, ext: str, head: bytes) -> None:
    if not head:
        raise RestoreError(f"{p}: file is empty")
    if not any(head.startswith(m) for m in _MAGIC[ext]):
        raise RestoreError(f"{p}: not a {_FORMAT_NAME[ext]} image (unrecognised file header)")


def _check_png_complete(p: Path, data: bytes) -> None:
    """Walk the PNG chunks, checking CRCs, up to IEND.

    cv2 decodes a truncated PNG partially (grey rows) or not at all, so
    completeness is checked on the bytes rather than trusted to the decoder.
    """
    view = memoryview(data)
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, tag = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise RestoreError(f"{p}: corrupt PNG (bad checksum in {tag.decode('latin-1')} chunk)")
        if tag == b"IEND":
            return
        pos = end
    raise RestoreError(f"{p}: truncated PNG (file ends before the IEND chunk)")


def _check_jpeg_complete(p: Path, data: bytes) -> None:
    """Require an end-of-image marker after the last start-of-scan marker.

    Inside entropy-coded data every 0xFF byte is stuffed (FF 00), so FF D9
    after the last FF DA only occurs if the final scan was written completely.
    cv2/libjpeg would otherwise return a truncated JPEG padded with grey.
    """
    sos = data.rfind(b"\xff\xda")
    if sos < 0 or data.find(b"\xff\xd9", sos) < 0:
        raise RestoreError(f"{p}: truncated or corrupt JPEG (no end-of-image marker after the image data)")


def _check_bmp_complete(p: Path, data: bytes) -> None:
    size = struct.unpack_from("<I", data, 2)[0] if len(data) >= 6 else 0
    if len(data) < 54 or size > len(data):
        raise RestoreError(f"{p}: truncated BMP ({len(data)} bytes, header says {size})")


def _png_color_type(data: bytes) -> int:
    # IHDR is always the first chunk: signature(8) + length(4) + "IHDR"(4) + w(4) + h(4) + depth(1).
    return data[25] if len(data) > 25 else -1


def _decode_cv2(p: Path, ext: str, data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    {".png": _check_png_complete, ".bmp": _check_bmp_complete}.get(ext, _check_jpeg_complete)(p, data)
    # imdecode on bytes read by Python (same decoder as cv2.imread with
    # IMREAD_UNCHANGED) also works for non-ASCII paths on every OS.
    try:
        with _decoder_messages() as messages:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise RestoreError(f"{p}: corrupt or unsupported {_FORMAT_NAME[ext]} image ({_first_line(exc)})") from None
    warning = next((m for m in messages() if "corrupt" in m.lower() or "premature" in m.lower()), None)
    if warning is not None:
        # libjpeg decodes damaged data into garbage with only a warning on stderr: refuse it instead.
        raise RestoreError(f"{p}: corrupt {_FORMAT_NAME[ext]} data ({warning.strip().rstrip('.')})")
    if img is None:
        raise RestoreError(f"{p}: corrupt or unsupported {_FORMAT_NAME[ext]} image (decoder failed)")
    if img.ndim == 2:
        return img, None
    alpha = np.ascontiguousarray(img[:, :, 3]) if img.shape[2] == 4 else None
    if ext == ".png" and _png_color_type(data) in _PNG_GRAY_TYPES:
        # cv2 expands gray + alpha PNGs to BGRA; keep them gray.
        return np.ascontiguousarray(img[:, :, 0]), alpha
    return np.ascontiguousarray(img[:, :, 2::-1]), alpha


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


@contextlib.contextmanager
def _decoder_messages() -> Iterator[Callable[[], list[str]]]:
    """Capture what C decoders (libjpeg inside OpenCV) print on file descriptor 2 while decoding.

    Yields a function giving the captured lines once the block is done.
    """
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (embedded interpreters): nothing to capture
        yield lambda: lines
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())


def _header_size(p: Path, ext: str, data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG, JPEG or BMP header without decoding (None: not found)."""
    if ext == ".png" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack_from(">II", data, 16)
        return h, w
    if ext == ".bmp" and len(data) >= 26:
        w, h = struct.unpack_from("<ii", data, 18)
        return abs(h), abs(w)
    if ext in (".jpg", ".jpeg"):
        pos = 2
        while pos + 9 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            (length,) = struct.unpack_from(">H", data, pos + 2)
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                h, w = struct.unpack_from(">HH", data, pos + 5)
                return h, w
            pos += 2 + length
    return None


def check_pixel_count(p: Path, height: int, width: int, channels: int, max_pixels: float | None) -> None:
    """Refuse an image with more than ``max_pixels`` pixels (None: no limit), from its header's size."""
    if max_pixels is None or height * width <= max_pixels:
        return
    gigabytes = height * width * max(channels, 1) * 4 / 1e9
    raise RestoreError(
        f"{p}: {width} x {height} pixels ({height * width / 1e6:.0f} Mpx) is over the {max_pixels / 1e6:.0f} Mpx limit "
        f"for in-memory images (it would take about {gigabytes:.1f} GB as floats); pass max_pixels={height * width} "
        f"to read it anyway, or save it as a tiled GeoTIFF, which is streamed"
    )


def _check_max_pixels(max_pixels: float | None) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool) or not max_pixels > 0):
        raise RestoreError(f"max_pixels must be a number > 0 (or None: no limit), got {max_pixels!r}")


def _check_tiff_complete(p: Path, page: tifffile.TiffPage, size: int) -> None:
    ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts) if n]
    if not ends or max(ends) > size:
        raise RestoreError(f"{p}: truncated TIFF (image data extends past the end of the file)")


def _split_tiff_alpha(p: Path, page: tifffile.TiffPage, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return channels-last color bands and the alpha band flagged by ExtraSamples."""
    axes = page.axes
    if axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif axes not in ("YX", "YXS"):
        raise RestoreError(f"{p}: unsupported TIFF layout {axes!r}; expected a single 2-D image (YX, YXS or SYX)")
    if arr.ndim == 2:
        return arr, None
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    first_extra = arr.shape[2] - len(extras)
    alpha_at = [first_extra + i for i, e in enumerate(extras) if e in _ALPHA_EXTRASAMPLES]
    if not alpha_at:
        return np.ascontiguousarray(arr), None
    k = alpha_at[0]
    color = np.delete(arr, k, axis=2)
    color = color[:, :, 0] if color.shape[2] == 1 else color
    return np.ascontiguousarray(color), np.ascontiguousarray(arr[:, :, k])


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs a warning line for some bad headers before raising: the error says it instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _decode_tiff(p: Path, max_pixels: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the first page of a TIFF (a GeoTIFF's full-resolution raster)."""
    try:
        with _quiet_tifffile(), tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            if int(page.photometric) == 3:
                raise RestoreError(f"{p}: palette (indexed-color) TIFFs are not supported; convert to RGB")
            shape = dict(zip(page.axes, page.shape))
            check_pixel_count(p, shape.get("Y", 1), shape.get("X", 1), shape.get("S", 1), max_pixels)
            _check_tiff_complete(p, page, p.stat().st_size)
            arr = page.asarray()
            return _split_tiff_alpha(p, page, arr)
    except RestoreError:
        raise
    except Exception as exc:  # tifffile raises many types for bad files
        raise RestoreError(f"{p}: corrupt or unsupported TIFF ({type(exc).__name__}: {_first_line(exc)})") from None


def _bit_depth(p: Path, dtype: np.dtype) -> int:
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        return 16
    if np.issubdtype(dtype, np.floating):
        return 32
    raise RestoreError(f"{p}: unsupported sample type {dtype}; expected uint8, uint16 or float")


def read_image(path: PathLike, *, value_range: float | None = None, max_pixels: float | None = MAX_PIXELS) -> ImageData:
    """Read a PNG, JPEG, TIFF or BMP image (8/16-bit, float TIFF; gray, RGB, +alpha).

    TIFF alpha is the extra sample flagged as alpha in the ExtraSamples tag;
    other extra samples are bands. Only the first TIFF page is read.

    Pixels are checked: NaN or inf values are refused (naming how many and the
    first one's place), and so is float data far outside [0, 1] (beyond [-1, 2],
    e.g. a float TIFF in 0-255) unless ``value_range`` says how to scale it.

    Args:
        path: the image file.
        value_range: the stored value that means full scale (read as 1.0): e.g. 4095
            for 12-bit data in a 16-bit file, 255 for a float TIFF in 0-255. Default:
            the type's maximum (255, 65535), 1.0 for floats.
        max_pixels: refuse images with more pixels than this, from the header and
            before decoding (None: no limit).

    Returns:
        An ``ImageData``; see its attributes for conventions.

    Raises:
        RestoreError: missing file, directory, unsupported or non-image file,
            truncated or corrupt file, unsupported sample type, too many pixels,
            non-finite pixels, float pixels out of range, a value range the type cannot hold.
    """
    p = Path(path)
    ext = _check_readable(p)
    _check_max_pixels(max_pixels)
    if value_range is not None and (isinstance(value_range, bool) or not 0 < value_range < float("inf")):
        raise RestoreError(f"value_range must be a number > 0, got {value_range!r}")
    try:
        if ext in _TIFF:
            with open(p, "rb") as fh:
                _check_magic(p, ext, fh.read(8))
            color, alpha = _decode_tiff(p, max_pixels)
        else:
            data = p.read_bytes()
            _check_magic(p, ext, data[:8])
            size = _header_size(p, ext, data)
            if size is not None:
                check_pixel_count(p, *size, 3, max_pixels)
            color, alpha = _decode_cv2(p, ext, data)
    except OSError as exc:
        raise RestoreError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    bit_depth = _bit_depth(p, color.dtype)
    if bit_depth == 32:
        color = color.astype(np.float32, copy=False)
    elif value_range is not None and value_range > np.iinfo(color.dtype).max:
        raise RestoreError(f"{p}: value_range={value_range:g} is beyond what its {bit_depth}-bit pixels can hold "
                           f"(at most {np.iinfo(color.dtype).max})")
    pixels = from_numpy_image(color, value_range)
    check_finite(pixels, str(p), "fix or mask them in the file first")
    if value_range is None:
        check_unit_range(pixels, str(p), "pass value_range={scale} (the value meaning full scale) to scale them")
    else:
        check_unit_range(pixels, str(p), f"value_range={value_range:g} is too small for them (try {{scale}} times larger)")
    return ImageData(pixels=pixels, alpha=alpha, bit_depth=bit_depth, path=p, value_range=value_range)


def list_images(folder: PathLike) -> list[Path]:
    """Return the image files (png, jpg, jpeg, tif, tiff, bmp) in a folder, sorted.

    Not recursive. Hidden files are skipped; they include the temp files of
    an interrupted ``write_image``.
    """
    d = Path(folder)
    if not d.is_dir():
        raise RestoreError(f"{d}: not a folder" if d.exists() else f"{d}: folder not found")
    return sorted(
        f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".") and f.is_file()
    )


# ------------------------------------------------------------------------ writing


def _output_depth(p: Path, ext: str, bit_depth: int) -> int:
    if bit_depth not in (8, 16, 32):
        raise RestoreError(f"bit_depth must be 8, 16 or 32, got {bit_depth!r}")
    if ext in (".jpg", ".jpeg", ".bmp"):
        return 8  # these formats hold 8 bits only; higher depths fall back quietly
    if ext == ".png" and bit_depth == 32:
        raise RestoreError(f"{p}: PNG holds 8 or 16 bits: write a .tif for float (32-bit) output, or pass bit_depth=16")
    return bit_depth


def check_output(path: PathLike, bit_depth: int, *, channels: int | None = None, value_range: float | None = None) -> int:
    """Refuse what ``path``'s format cannot hold (before any work); return the depth it will be written at.

    Args:
        path: the output file.
        bit_depth: 8, 16 or 32 (float; TIFF only).
        channels: colour channels of the result, when known (PNG, JPEG and BMP hold 1 or 3).
        value_range: the stored value of 1.0, when not the type's maximum.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise RestoreError(f"{p}: unknown output format {ext or '(no extension)'}; use .png, .jpg, .tif or .bmp")
    depth = _output_depth(p, ext, bit_depth)
    if channels is not None and ext not in _TIFF and channels not in (1, 3):
        raise RestoreError(
            f"{p}: {_FORMAT_NAME[ext]} stores 1 (gray) or 3 (RGB) color channels, got {channels}; write a .tif instead"
        )
    if value_range is not None:
        if isinstance(value_range, bool) or not 0 < value_range < float("inf"):
            raise RestoreError(f"value_range must be a number > 0, got {value_range!r}")
        if depth != 32 and value_range > np.iinfo(_depth_dtype(depth)).max:
            raise RestoreError(f"{p}: {depth}-bit pixels cannot hold value_range={value_range:g} "
                               f"(at most {np.iinfo(_depth_dtype(depth)).max}); write a 16-bit PNG or a TIFF")
    return depth


def _depth_dtype(bit_depth: int) -> np.dtype:
    return np.dtype({8: np.uint8, 16: np.uint16, 32: np.float32}[bit_depth])


def _convert_alpha(alpha: np.ndarray, bit_depth: int, shape: tuple[int, int]) -> np.ndarray:
    """Return ``alpha`` in the output dtype: unchanged when the depth already matches."""
    if not isinstance(alpha, np.ndarray) or alpha.shape != shape:
        got = alpha.shape if isinstance(alpha, np.ndarray) else type(alpha).__name__
        raise RestoreError(f"alpha must be a numpy array of shape {shape} (H, W), got {got}")
    target = _depth_dtype(bit_depth)
    if alpha.dtype == target:
        return alpha
    if alpha.dtype in (np.uint8, np.uint16):
        unit = alpha / float(np.iinfo(alpha.dtype).max)
    elif np.issubdtype(alpha.dtype, np.floating):
        unit = np.clip(alpha.astype(np.float64), 0.0, 1.0)
    else:
        raise RestoreError(f"alpha must be uint8, uint16 or float, got {alpha.dtype}")
    if bit_depth == 32:
        return unit.astype(np.float32)
    return np.rint(unit * np.iinfo(target).max).astype(target)


def _check_not_protected(p: Path, protect: Iterable[PathLike]) -> None:
    if isinstance(protect, (str, os.PathLike)):
        protect = [protect]  # a single path, not an iterable of characters
    target = p.resolve()
    for q in protect:
        q = Path(q)
        same = q.resolve() == target or (p.exists() and q.exists() and os.path.samefile(p, q))
        if same:
            raise RestoreError(f"{p}: refusing to write over an input image")


def _encode_png_gray_alpha(gray: np.ndarray, alpha: np.ndarray) -> bytes:
    """Encode a gray + alpha PNG (color type 4), which cv2 cannot write."""
    h, w = gray.shape
    pixels = np.stack([gray, alpha], axis=-1).astype(f">u{gray.dtype.itemsize}")  # PNG is big-endian
    raw = pixels.view(np.uint8).reshape(h, -1)
    filtered = raw.copy()
    filtered[1:] -= raw[:-1]  # "Up" filter (wraps mod 256): compresses much better than none
    rows = np.concatenate([np.full((h, 1), 2, np.uint8), filtered], axis=1)
    compressed = zlib.compress(rows.tobytes(), 6)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", w, h, gray.dtype.itemsize * 8, 4, 0, 0, 0)
    step = 1 << 30  # PNG chunks are limited to 2**31 - 1 bytes
    idat = b"".join(chunk(b"IDAT", compressed[i : i + step]) for i in range(0, max(len(compressed), 1), step))
    return _PNG_SIGNATURE + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def _encode_cv2(p: Path, ext: str, color: np.ndarray, alpha: np.ndarray | None) -> bytes:
    channels = 1 if color.ndim == 2 else color.shape[2]
    if channels not in (1, 3):
        raise RestoreError(
            f"{p}: {_FORMAT_NAME[ext]} stores 1 (gray) or 3 (RGB) color channels, got {channels}; write a .tif instead"
        )
    if ext == ".png" and channels == 1 and alpha is not None:
        return _encode_png_gray_alpha(color, alpha)
    if channels == 1 and alpha is not None:  # BMP: no gray + alpha, store as BGRA
        color = np.repeat(color[:, :, None], 3, axis=2)
        channels = 3
    bgr = color if channels == 1 else color[:, :, ::-1]
    if alpha is not None:
        bgr = np.concatenate([bgr, alpha[:, :, None]], axis=2)
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(bgr), params)
    if not ok:
        raise RestoreError(f"{p}: OpenCV could not encode the image as {_FORMAT_NAME[ext]}")
    return buf.tobytes()


def _write_tiff(fh: BinaryIO, color: np.ndarray, alpha: np.ndarray | None) -> None:
    channels = 1 if color.ndim == 2 else color.shape[2]
    data = color if color.ndim == 3 else color[:, :, None]
    extrasamples: tuple[int, ...] = ()
    if alpha is not None:
        data = np.concatenate([data, alpha[:, :, None]], axis=2)
    photometric = "rgb" if channels == 3 else "minisblack"
    n_extra = data.shape[2] - (3 if channels == 3 else 1)
    if n_extra:
        # Bands beyond the photometric ones are "unspecified"; alpha, last, is flagged as such.
        extrasamples = (0,) * (n_extra - (alpha is not None)) + ((2,) if alpha is not None else ())
    if data.shape[2] == 1:
        data = data[:, :, 0]
    tifffile.imwrite(
        fh, data, photometric=photometric, planarconfig="contig",
        extrasamples=extrasamples or None, compression="zlib",
    )


def temp_path(p: Path) -> Path:
    """The temp file an atomic write of ``p`` goes through: ``.NAME.restore-PID-TOKEN.tmp.EXT`` beside it.

    Same folder (the rename stays on one file system), same extension (for
    writers that go by it), hidden (``list_images`` never picks up a leftover),
    and named after ``p`` and the writing process, so that a later run can tell
    a killed run's leftovers from a live writer's file (``remove_stale_temps``).
    """
    return p.with_name(f".{p.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}.tmp{p.suffix}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def stale_temps(output: PathLike, before: float | None = None) -> list[Path]:
    """Temp files of interrupted writes of ``output``: no live writer process, modified before ``before``."""
    p = Path(output)
    if not p.parent.is_dir():
        return []
    found = []
    for f in p.parent.glob(f".{glob_escape(p.name)}{TEMP_MARK}*.tmp*"):
        m = _TEMP_NAME.match(f.name)
        if m is None or m.group("name") != p.name or _pid_alive(int(m.group("pid"))):
            continue
        try:
            if before is None or f.stat().st_mtime < before:
                found.append(f)
        except OSError:
            continue
    return sorted(found)


def remove_stale_temps(outputs: Iterable[PathLike], before: float | None = None) -> list[Path]:
    """Remove the temp files killed runs left beside ``outputs`` (see ``stale_temps``); return those removed."""
    removed = []
    for output in outputs:
        for f in stale_temps(output, before):
            try:
                f.unlink()
            except OSError:
                continue
            removed.append(f)
    return removed


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def atomic_write(p: Path, write: Callable[[BinaryIO], None], what: str = "file") -> None:
    """Write through ``write`` into a temp file beside ``p``, then rename it onto ``p``.

    ``what`` names the file in the one-line error (``cannot write <what>``).
    """
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RestoreError(f"{p}: cannot create the output folder ({exc.strerror or exc})") from None
    tmp = temp_path(p)
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        raise RestoreError(f"{p}: cannot write {what} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_image(
    path: PathLike,
    pixels: torch.Tensor,
    *,
    bit_depth: int = 8,
    alpha: np.ndarray | None = None,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
    value_range: float | None = None,
) -> Path:
    """Write a 1 x C x H x W image in [0, 1] atomically; format from the extension.

    Pixels are clipped to [0, 1] and rounded to 8 or 16 bits (32: float32
    TIFF, values as given). JPEG and BMP are 8-bit only: other depths fall
    back to 8 without error. JPEG has no alpha: it is dropped with a warning.
    With ``value_range``, 1.0 is written as that value (the units the input was
    read in, e.g. 4095 for 12-bit data in 16 bits) instead of the type's maximum.

    Args:
        path: output file: .png, .jpg/.jpeg, .tif/.tiff or .bmp.
        pixels: color channels, 1 x C x H x W (or C x H x W) float tensor.
        bit_depth: 8, 16 or 32 (TIFF only).
        alpha: H x W alpha array, converted to the output depth if needed.
        overwrite: replace an existing file at ``path``.
        protect: paths never to write over, whatever ``overwrite`` says (the inputs).
        value_range: the stored value of 1.0 (default: 255 / 65535 for integers, 1.0 for floats).

    Returns:
        The path written.

    Raises:
        RestoreError: unknown extension, existing or protected output,
            unsupported channel count, NaN pixels, or a write failure.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise RestoreError(f"{p}: unknown output format {ext or '(no extension)'}; use .png, .jpg, .tif or .bmp")
    _check_not_protected(p, protect)
    if p.is_dir():
        raise RestoreError(f"{p}: is a directory, expected an output file path")
    if p.exists() and not overwrite:
        raise RestoreError(f"{p}: already exists; pass overwrite=True to replace it")
    depth = check_output(p, bit_depth, value_range=value_range)
    color = to_numpy_image(pixels, _depth_dtype(depth), value_range)
    if alpha is not None and ext in (".jpg", ".jpeg"):
        warnings.warn(f"{p}: JPEG has no alpha channel; the alpha channel is dropped", stacklevel=2)
        alpha = None
    if alpha is not None:
        alpha = _convert_alpha(alpha, depth, color.shape[:2])
    if ext in _TIFF:
        atomic_write(p, lambda fh: _write_tiff(fh, color, alpha))
    else:
        encoded = _encode_cv2(p, ext, color, alpha)
        atomic_write(p, lambda fh: fh.write(encoded))
    return p
