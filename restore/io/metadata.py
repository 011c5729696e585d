"""Photo metadata (EXIF, ICC profile, XMP): what a PNG, JPEG or WebP file carries, read without decoding pixels.

``ImageData.metadata`` describes the pixels as read, so its EXIF says
orientation 1 once the reader has turned them upright. The writers embed it
again in outputs that can hold it (``restore.io.embedding``, TIFF tags, WebP).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, replace

from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from restore.io.orientation import UPRIGHT, exif_orientation, reset_orientation

EXIF_HEADER = b"Exif\x00\x00"  # how JPEG's APP1 (and Pillow's ``info``) start an EXIF block
# An ICC profile's data colour space (header bytes 16-20) -> the colour channels it describes.
_ICC_CHANNELS = {b"GRAY": 1, b"RGB ": 3}
_PNG_XMP_KEY = "XML:com.adobe.xmp"
# Pillow's parsers by extension, called directly: ``Image.open`` would refuse a photo over its
# decompression-bomb limit (179 Mpx; a 200 MP phone shot) although the pixel limit here is 268 Mpx.
_PARSERS = {".png": PngImagePlugin.PngImageFile, ".jpg": JpegImagePlugin.JpegImageFile,
            ".jpeg": JpegImagePlugin.JpegImageFile, ".webp": WebPImagePlugin.WebPImageFile}


@dataclass(frozen=True)
class PhotoMetadata:
    """A photo's metadata blocks, as stored (None: absent).

    Attributes:
        exif: the EXIF block in its TIFF structure, without the ``Exif`` header.
        icc: the ICC colour profile.
        xmp: the XMP packet (XML bytes).
    """

    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.xmp)

    @property
    def orientation(self) -> int:
        """The EXIF orientation, 1-8 (1: pixels stored upright, or no EXIF)."""
        return exif_orientation(self.exif)

    def upright(self) -> PhotoMetadata:
        """The same metadata, for pixels already turned upright: EXIF orientation 1."""
        if self.exif is None or self.orientation == UPRIGHT:
            return self
        return replace(self, exif=reset_orientation(self.exif))

    def for_channels(self, channels: int) -> PhotoMetadata:
        """The same metadata without an ICC profile that describes other channels (a CMYK JPEG's, once RGB)."""
        if self.icc is None or _ICC_CHANNELS.get(self.icc[16:20]) == channels:
            return self
        return replace(self, icc=None)


NO_METADATA = PhotoMetadata()


def read_metadata(ext: str, data: bytes) -> PhotoMetadata:
    """The EXIF, ICC profile and XMP of a PNG, JPEG or WebP file's bytes (none for BMP, or when unreadable).

    Only the headers are parsed, never the pixels. Metadata never fails a read: a
    file Pillow cannot parse (the pixel decoder judges the file itself) simply has none.
    """
    parser = _PARSERS.get(ext)
    if parser is None:
        return NO_METADATA
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's warnings about odd chunks: the pixel decoder judges the file
            with parser(io.BytesIO(data)) as image:
                info = dict(image.info)
    except Exception:  # Pillow raises many types for files it cannot parse
        return NO_METADATA
    return PhotoMetadata(exif=_exif(info.get("exif")), icc=_bytes(info.get("icc_profile")),
                         xmp=_bytes(info.get("xmp") or info.get(_PNG_XMP_KEY)))


def _exif(value: object) -> bytes | None:
    block = _bytes(value)
    if block is not None and block.startswith(EXIF_HEADER):
        block = block[len(EXIF_HEADER):]
    return block or None


def _bytes(value: object) -> bytes | None:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None
