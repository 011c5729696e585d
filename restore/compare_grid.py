"""Side-by-side comparison grids: labelled panels, PSNR and SSIM against a reference, an optional zoomed crop.

``compare_grid`` lays images of one size out in a grid: a label strip above
each panel (its name), a caption strip below it (PSNR and SSIM against the
reference, when one is given) and, with a ``Crop``, a second row of cells
that show that region of every panel enlarged (nearest neighbour, whole
factors, so single pixels stay visible) while the region is outlined in red
on the panels themselves.

Channels are made consistent before anything is measured: when any image is
RGB, gray ones are repeated to three channels (a gray image's PSNR against a
gray reference is unchanged by that), so a mix of gray and colour outputs
compares the same pixels it shows. Scores use ``restore.metrics`` on the
values as given: whole image, every channel, data range 1, no border crop.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from restore.errors import RestoreError
from restore.metrics import psnr, ssim

BACKGROUND = 1.0  # white page
TEXT_COLOUR = (0.0, 0.0, 0.0)
OUTLINE_COLOUR = (1.0, 0.0, 0.0)  # RGB red
GAP = 8  # pixels between cells
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_FONT_SCALE = 0.35  # below this Hershey text stops being legible
SSIM_MIN_SIDE = 11  # restore.metrics.ssim's Gaussian window


@dataclass(frozen=True)
class Crop:
    """A region of every panel shown enlarged: top-left corner ``x``, ``y`` and its size, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def check_inside(self, height: int, width: int) -> None:
        """Refuse a region that is empty or not inside a ``height`` x ``width`` image."""
        if self.width < 1 or self.height < 1 or self.x < 0 or self.y < 0:
            raise RestoreError(f"crop {self.text()}: needs x, y >= 0 and width, height >= 1")
        if self.x + self.width > width or self.y + self.height > height:
            raise RestoreError(f"crop {self.text()} does not fit in the {width} x {height} images "
                               f"(x + width <= {width}, y + height <= {height})")

    def text(self) -> str:
        """``X,Y,W,H``, as the crop is written on the command line."""
        return f"{self.x},{self.y},{self.width},{self.height}"


def compare_grid(
    images: Sequence[torch.Tensor],
    labels: Sequence[str],
    *,
    reference: torch.Tensor | None = None,
    reference_label: str = "reference",
    crop: Crop | None = None,
    columns: int | None = None,
) -> torch.Tensor:
    """Draw the comparison grid of ``images`` (each 1 x C x H x W, C = 1 or 3, values in [0, 1]).

    Args:
        images: the images to compare, all of one size.
        labels: one name per image, written above its panel (ASCII; other characters show as ``?``).
        reference: the clean image; shown first, and every other panel gets its PSNR and SSIM against it.
        reference_label: the reference panel's name.
        crop: a region shown enlarged in a row of its own under each row of panels.
        columns: panels per row (default: all in one row).

    Returns:
        The grid, 1 x 3 x H' x W' float32 in [0, 1].

    Raises:
        RestoreError: no images, a label count that differs, sizes that differ, a channel count other
            than 1 or 3, a crop outside the images, or a columns value below 1.
    """
    images, labels = list(images), [str(label) for label in labels]
    if not images:
        raise RestoreError("compare needs at least one image")
    if len(labels) != len(images):
        raise RestoreError(f"compare got {len(labels)} labels for {len(images)} images")
    if reference is not None:
        images, labels = [reference, *images], [reference_label, *labels]
    _check_same_size(images, labels)
    images = consistent_channels(images, labels)
    height, width = images[0].shape[-2:]
    if crop is not None:
        crop.check_inside(height, width)
    captions = [panel_caption(im, images[0]) for im in images] if reference is not None else None
    if captions is not None:
        captions[0] = ["(the reference)"]
    columns = len(images) if columns is None else columns
    if columns < 1:
        raise RestoreError(f"columns must be at least 1, got {columns}")
    pictures = [_to_numpy(im) for im in images]
    cells = [_panel_cell(pic, label, None if captions is None else captions[i], crop)
             for i, (pic, label) in enumerate(zip(pictures, labels))]
    rows = [_row(cells[i:i + columns], columns) for i in range(0, len(cells), columns)]
    if crop is not None:
        zoomed = [_zoom_cell(pic, crop, width) for pic in pictures]
        rows = [part for i, row in enumerate(rows) for part in (row, _row(zoomed[i * columns:(i + 1) * columns], columns))]
    grid = _stack(rows, axis=0)
    return torch.from_numpy(np.ascontiguousarray(grid.transpose(2, 0, 1)))[None].float()


def consistent_channels(images: Sequence[torch.Tensor], labels: Sequence[str]) -> list[torch.Tensor]:
    """Every image with 3 channels (gray repeated), or 1 when all are gray; other channel counts refused."""
    for image, label in zip(images, labels):
        if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] not in (1, 3):
            raise RestoreError(f"compare shows gray or RGB images; {label} has shape {tuple(image.shape)} "
                               "(1 x C x H x W with C = 1 or 3 expected)")
    channels = max(image.shape[1] for image in images)
    return [image.float().expand(-1, channels, -1, -1) for image in images]


def panel_caption(image: torch.Tensor, reference: torch.Tensor) -> list[str]:
    """``["PSNR 28.41 dB", "SSIM 0.7888"]``: ``image`` against ``reference`` (no SSIM under 11 x 11 pixels).

    One score a line, so that captions fit under panels a hundred-odd pixels wide.
    """
    value = float(psnr(image, reference))
    lines = ["PSNR inf" if math.isinf(value) else f"PSNR {value:.2f} dB"]
    if min(image.shape[-2:]) >= SSIM_MIN_SIDE:
        lines.append(f"SSIM {float(ssim(image, reference)):.4f}")
    return lines


def _check_same_size(images: Sequence[torch.Tensor], labels: Sequence[str]) -> None:
    size = tuple(images[0].shape[-2:])
    for image, label in zip(images[1:], labels[1:]):
        if tuple(image.shape[-2:]) != size:
            raise RestoreError(f"compare needs images of one size: {labels[0]} is {size[1]} x {size[0]}, "
                               f"{label} is {image.shape[-1]} x {image.shape[-2]} (width x height)")


def _to_numpy(image: torch.Tensor) -> np.ndarray:
    """H x W x 3 float32 in [0, 1] (gray repeated: the page is RGB so that the crop outline can be red)."""
    picture = image[0].detach().cpu().float().clamp(0, 1).numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(np.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture)


def _panel_cell(picture: np.ndarray, label: str, caption: list[str] | None, crop: Crop | None) -> np.ndarray:
    """Label strip, the picture (crop region outlined), a strip per caption line when there is a caption."""
    width = picture.shape[1]
    if crop is not None:
        picture = picture.copy()
        thickness = max(1, width // 256)
        cv2.rectangle(picture, (crop.x, crop.y), (crop.x + crop.width - 1, crop.y + crop.height - 1),
                      OUTLINE_COLOUR, thickness)
    parts = [_text_strip(label, width), picture]
    if caption is not None:
        parts.append(np.concatenate([_text_strip(line, width) for line in caption], axis=0))
    return _stack(parts, axis=0)


def _zoom_cell(picture: np.ndarray, crop: Crop, width: int) -> np.ndarray:
    """The crop region enlarged by the largest whole factor that keeps it within the panel's width."""
    region = picture[crop.y:crop.y + crop.height, crop.x:crop.x + crop.width]
    factor = max(1, width // crop.width)
    zoomed = cv2.resize(region, (crop.width * factor, crop.height * factor), interpolation=cv2.INTER_NEAREST)
    label = _text_strip(f"crop {crop.text()}, x{factor}", width)
    return _stack([label, _pad_width(zoomed, width)], axis=0)


def _font_scale(width: int) -> float:
    """Text about a 40th of the panel's width tall, within legible bounds."""
    return min(2.0, max(0.45, width / 600))


def _text_strip(text: str, width: int) -> np.ndarray:
    """A white strip of ``width`` pixels holding ``text`` (shrunk, then shortened in the middle, to fit)."""
    text = text.encode("ascii", "replace").decode("ascii")  # Hershey fonts draw ASCII only
    scale = _font_scale(width)
    thickness = max(1, round(scale * 1.5))
    while _text_width(text, scale, thickness) > width - 4 and scale > MIN_FONT_SCALE:
        scale = max(MIN_FONT_SCALE, scale * 0.9)
    while _text_width(text, scale, thickness) > width - 4 and len(text) > 4:
        text = _shorten(text)
    (_, text_height), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(3, text_height // 2)
    # OpenCV draws text into 8-bit images only; a black-on-white strip loses nothing at 8 bits.
    strip = np.full((text_height + baseline + 2 * pad, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, pad + text_height), FONT, scale, TEXT_COLOUR, thickness, cv2.LINE_AA)
    return strip.astype(np.float32) / 255


def _shorten(text: str, mark: str = "..") -> str:
    """One character less on each side of a ``..`` in the middle (put there first): both ends stay readable."""
    if mark not in text:
        middle = len(text) // 2
        return text[:middle - 1] + mark + text[middle + 1:]
    head, tail = text.rsplit(mark, 1)
    return head[:-1] + mark + tail[1:]


def _text_width(text: str, scale: float, thickness: int) -> int:
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0]


def _pad_width(picture: np.ndarray, width: int) -> np.ndarray:
    extra = width - picture.shape[1]
    return np.pad(picture, ((0, 0), (0, extra), (0, 0)), constant_values=BACKGROUND) if extra > 0 else picture


def _row(cells: list[np.ndarray], columns: int) -> np.ndarray:
    """Cells side by side, top-aligned, with gaps; a short last row keeps the grid's column width."""
    if len(cells) < columns:
        cells = cells + [np.full((1, cells[0].shape[1], 3), BACKGROUND, np.float32)] * (columns - len(cells))
    return _stack(cells, axis=1)


def _stack(parts: list[np.ndarray], axis: int) -> np.ndarray:
    """Concatenate along ``axis`` (0: down, 1: across) with ``GAP`` white pixels between, padding the other side."""
    other = 1 - axis
    size = max(p.shape[other] for p in parts)
    padded = []
    for i, part in enumerate(parts):
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[other] = (0, size - part.shape[other])
        pad[axis] = (0, GAP if i < len(parts) - 1 else 0)
        padded.append(np.pad(part, pad, constant_values=BACKGROUND))
    return np.concatenate(padded, axis=axis)
