"""Raster files window by window: the reader and the writer both streaming drivers use.

A ``RasterReader`` reads windows of a GeoTIFF (any GDAL raster) as float
tensors in [0, 1]; a ``RasterWriter`` writes a tiled, compressed (Big)GeoTIFF
with the source's CRS, transform (scaled for super-resolution), nodata, band
descriptions and tags, to a temporary file renamed into place only when every
block is written (never a half-written output).

Integer rasters are scaled by an explicit value range: 255 for uint8, and for
uint16 the sensor's range (4095 for 12-bit sensors, 65535 by default) -- never
guessed from the data, which would change from block to block.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from restore.errors import RestoreError
from restore.io import temp_path
from restore.operators.noise_level import SAMPLE_SIDE  # the region whole-image decisions are made on, as in memory
from restore.pixel_values import HIGH, LOW, check_finite, check_unit_range

# GDAL caches raster blocks up to 5% of RAM by default, and keeps written blocks
# in that cache: memory would grow with the raster. 64 MB bounds it (an
# explicit GDAL_CACHEMAX in the environment wins). Set before GDAL first reads
# it, which is at the first raster access in this process (Dask workers too,
# since they import this module to unpickle a reader).
os.environ.setdefault("GDAL_CACHEMAX", "64")

# Output blocks of the written GeoTIFF (a multiple of 16, as GDAL requires).
WRITE_BLOCK = 512
DTYPE_RANGE = {"uint8": 255.0, "uint16": 65535.0, "int16": 32767.0}
FLOAT_DTYPES = ("float32", "float64")


def _rasterio():
    try:
        import rasterio
    except ImportError:  # pragma: no cover - a dependency, but say what to do
        raise RestoreError("GeoTIFF streaming needs rasterio: pip install rasterio") from None
    return rasterio


# TIFFs with more pixels than this are streamed even without georeferencing.
STREAM_PIXELS = 4096 * 4096


def wants_streaming(path: Path) -> bool:
    """Whether a file should go through block streaming: a georeferenced or very large TIFF."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return False
    rasterio = _rasterio()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.crs is not None or src.gcps[0] != [] or src.width * src.height > STREAM_PIXELS
    except rasterio.errors.RasterioIOError:
        return False  # let the ordinary reader give its own message


class RasterReader:
    """Windows of a raster file as C x h x w float32 arrays in [0, 1].

    Picklable (it holds the path, not the GDAL handle), so that Dask workers
    each open their own handle: GDAL handles are not thread-safe.

    Args:
        path: the raster.
        value_range: the value that maps to 1.0 (default: 255 for uint8, 65535
            for uint16, 32767 for int16, 1.0 for floats).
    """

    def __init__(self, path: str | Path, value_range: float | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RestoreError(f"input not found: {self.path}")
        rasterio = _rasterio()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                src = rasterio.open(self.path)
            with src:
                self.profile = dict(src.profile)
                self.count, self.height, self.width = src.count, src.height, src.width
                if len(set(src.dtypes)) > 1:
                    raise RestoreError(f"{self.path}: bands of different pixel types are not supported")
                self.dtype = np.dtype(src.dtypes[0])
                self.nodata = src.nodata
                self.descriptions = src.descriptions
                self.tags = src.tags()
                self.colorinterp = src.colorinterp
        except rasterio.errors.RasterioIOError as e:
            raise RestoreError(f"cannot read {self.path} as a raster: {str(e).splitlines()[0]}") from None
        self.value_range = self._value_range(value_range)
        self._local = threading.local()

    def _value_range(self, value_range: float | None) -> float:
        if value_range is not None:
            if not value_range > 0:
                raise RestoreError(f"--value-range must be > 0, got {value_range}")
            return float(value_range)
        if self.dtype.name in DTYPE_RANGE:
            return DTYPE_RANGE[self.dtype.name]
        if self.dtype.name in FLOAT_DTYPES:
            return 1.0
        raise RestoreError(f"{self.path}: pixel type {self.dtype.name} is not supported (uint8, uint16, int16, float32/64)")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(bands, height, width)."""
        return (self.count, self.height, self.width)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _handle(self):
        """This thread's open dataset (opened once per thread and process)."""
        handle = getattr(self._local, "handle", None)
        if handle is None or getattr(self._local, "pid", None) != os.getpid():
            rasterio = _rasterio()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                handle = rasterio.open(self.path)
            self._local.handle, self._local.pid = handle, os.getpid()
        return handle

    def read_raw(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows r0:r1, columns c0:c1 of every band, in the file's type (C x h x w)."""
        from rasterio.windows import Window

        return self._handle().read(window=Window(c0, r0, c1 - c0, r1 - r0))

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """The window as float32 in [0, 1] (values beyond the range are kept, not clipped; see ``pixels``)."""
        return self.pixels(self.read_raw(r0, r1, c0, c1))

    def pixels(self, raw: np.ndarray) -> np.ndarray:
        """``scaled`` raw pixels, nodata pixels that are NaN, inf or far outside [0, 1] (-9999) set to 0.

        They are written back as nodata; set to 0 they neither spread NaN nor fail the range check.
        """
        out = self.scaled(raw)
        nodata = self.nodata_of(raw)
        if nodata is not None and nodata.any():
            with np.errstate(invalid="ignore"):
                wild = (~np.isfinite(out) | (out < LOW) | (out > HIGH)).any(axis=0)
            out[:, nodata & wild] = 0.0
        return out

    def scaled(self, raw: np.ndarray) -> np.ndarray:
        """Raw pixels as float32 in [0, 1] units."""
        return (raw.astype(np.float32) / np.float32(self.value_range)).astype(np.float32)

    def nodata_of(self, raw: np.ndarray) -> np.ndarray | None:
        """h x w boolean: pixels of raw C x h x w that are nodata in every band (None: the file has no nodata)."""
        if self.nodata is None:
            return None
        hit = np.isnan(raw) if np.isnan(self.nodata) else raw == self.nodata
        return hit.all(axis=0)

    def centre_sample(self, side: int = SAMPLE_SIDE) -> np.ndarray:
        """The central side x side window (or all), where whole-image decisions (noise level) are made."""
        r0, c0 = max(0, (self.height - side) // 2), max(0, (self.width - side) // 2)
        return self.read(r0, min(self.height, r0 + side), c0, min(self.width, c0 + side))

    def nodata_mask(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray | None:
        """``nodata_of`` a window read from the file (for callers that do not hold its pixels)."""
        return None if self.nodata is None else self.nodata_of(self.read_raw(r0, r1, c0, c1))


class RasterWriter:
    """A tiled, compressed GeoTIFF like ``reader``'s, ``upscale`` times larger, written window by window.

    Use as a context manager: the file appears at ``path`` only if the block
    exits without an error.

    Args:
        path: the output file.
        reader: the source whose metadata is copied.
        upscale: output pixels per input pixel (the transform is scaled by 1 / upscale).
        channels: output band count (default: the source's).
        dtype: output pixel type (default: the source's); integers are rounded and clipped.
        overwrite: replace an existing ``path``.
    """

    def __init__(self, path: str | Path, reader: RasterReader, *, upscale: int = 1, channels: int | None = None,
                 dtype: str | None = None, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.resolve() == reader.path.resolve():
            raise RestoreError(f"output {self.path} is the input; choose another name")
        if self.path.exists() and not overwrite:
            raise RestoreError(f"{self.path} exists; pass --overwrite to replace it")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as the in-memory writer does
        except OSError as exc:
            raise RestoreError(f"{self.path}: cannot create the output folder ({exc.strerror or exc})") from None
        self.reader = reader
        self.upscale = upscale
        self.dtype = np.dtype(dtype or reader.dtype)
        self.channels = channels or reader.count
        self.tmp = temp_path(self.path)  # .NAME.restore-PID-TOKEN.tmp.tif: found and removed by a later run if killed
        self._dst = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the output, in output pixels."""
        return self.reader.height * self.upscale, self.reader.width * self.upscale

    def profile(self) -> dict:
        """The source profile with the output size, transform, tiling and compression."""
        from rasterio.transform import Affine

        p = dict(self.reader.profile)
        s = self.upscale
        h, w = self.size
        p.update(driver="GTiff", height=h, width=w, count=self.channels, dtype=self.dtype.name,
                 tiled=True, blockxsize=WRITE_BLOCK, blockysize=WRITE_BLOCK, compress="deflate",
                 predictor=3 if self.dtype.kind == "f" else 2, BIGTIFF="IF_SAFER")
        if p.get("transform") is not None and s != 1:
            p["transform"] = p["transform"] @ Affine.scale(1 / s)
        if h < WRITE_BLOCK or w < WRITE_BLOCK:
            p.update(tiled=False)
            p.pop("blockxsize")
            p.pop("blockysize")
        if self.channels != self.reader.count:
            p.pop("photometric", None)  # the source's colour model no longer fits the band count
        return p

    def __enter__(self) -> "RasterWriter":
        rasterio = _rasterio()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._dst = rasterio.open(self.tmp, "w", **self.profile())
        except rasterio.errors.RasterioIOError as e:
            self.tmp.unlink(missing_ok=True)
            raise RestoreError(f"{self.path}: cannot write the output ({str(e).splitlines()[0].replace(str(self.tmp), 'its temp file')})") from None
        if self.channels == self.reader.count:
            for i, d in enumerate(self.reader.descriptions, start=1):
                if d:
                    self._dst.set_band_description(i, d)
            try:
                self._dst.colorinterp = self.reader.colorinterp
            except Exception:  # noqa: BLE001 - cosmetic; some layouts refuse it
                pass
        if self.reader.tags:
            self._dst.update_tags(**self.reader.tags)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._dst.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)

    def write(self, r0: int, c0: int, values: np.ndarray, nodata: np.ndarray | None = None) -> None:
        """Write C x h x w float ``values`` in [0, 1] at output row r0, column c0.

        ``nodata`` (h x w boolean) marks pixels written as the nodata value.
        """
        from rasterio.windows import Window

        out = values.astype(np.float64) * self.reader.value_range
        if self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(self.dtype)
        if nodata is not None and self.reader.nodata is not None:
            out[:, nodata] = self.reader.nodata
        h, w = out.shape[-2:]
        self._dst.write(out, window=Window(c0, r0, w, h))


def check_pixels(reader: RasterReader, y: torch.Tensor, origin: tuple[int, int], noise_std: float) -> None:
    """Refuse NaN / inf pixels (other than nodata) and values far outside [0, 1] once scaled, in ``read_image``'s words."""
    check_finite(y, str(reader.path), "mark them as the file's nodata value, or fix them", origin)
    fix = ("pass value_range={scale} (the value meaning full scale) to scale them" if reader.value_range == 1.0
           else f"value_range={reader.value_range:g} is too small for them (try {{scale}} times larger)")
    check_unit_range(y, str(reader.path), fix, noise_std)
