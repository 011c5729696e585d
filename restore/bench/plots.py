"""Pictures of benchmark results, written as PNG beside the tables: PSNR against time, montages, std against error.

matplotlib is optional (the ``bench`` extra): it is imported inside the
functions, and a missing install raises ``RestoreError`` with the pip command.
Figures are drawn on matplotlib's Agg canvas directly (``Figure``, not
``pyplot``), so that the caller's backend and pyplot state are never touched,
and written atomically with ``restore.io.atomic_write``.

Example:
    >>> rows = [{"method": "lidia", "setting": "sigma 25", "psnr": 29.1, "seconds_per_image": 6.7}]
    >>> psnr_vs_seconds(rows, "denoise.png", "denoise on BSD68")       # doctest: +SKIP
    >>> montage([("noisy", y), ("lidia", x_hat), ("clean", x)], "denoise_montage.png")  # doctest: +SKIP
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.io import atomic_write

_INSTALL = "pip install 'restore[bench]'"
_DPI = 100
_PANEL_MIN = 256  # small crops are magnified by an integer factor up to this many screen pixels
_PANEL_MAX = 768  # larger images are shrunk to this, so that a montage PNG stays a few hundred KB
_ERROR_MAP = "inferno"
_MAP_QUANTILE = 0.995  # colour scale top: a few hot pixels must not wash a whole map out


def _matplotlib(what: str) -> None:
    """Raise RestoreError, naming ``what`` and the install command, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise RestoreError(f"{what} needs matplotlib: {_INSTALL}") from None


def _figure(what: str, width_px: float, height_px: float) -> Any:
    """A matplotlib Figure on an Agg canvas, or RestoreError when matplotlib is missing."""
    _matplotlib(what)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise RestoreError(f"{p}: plots are written as PNG; give a path ending in .png")
    return p


def _save(fig: Any, path: Path, what: str) -> Path:
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=_DPI), what=what)
    return path


# ------------------------------------------------------------------ PSNR vs time


def _points(rows: Sequence[dict]) -> list[tuple[str, str, float, float]]:
    """(method, setting, seconds, psnr) of each plottable row; rows without a PSNR or a time are left out."""
    if isinstance(rows, (str, bytes, dict)) or not isinstance(rows, Sequence):
        raise RestoreError(f"rows must be a list of dicts, got {type(rows).__name__}")
    points = []
    for i, row in enumerate(rows):
        missing = [k for k in ("method", "setting", "psnr", "seconds_per_image") if not isinstance(row, dict) or k not in row]
        if missing:
            raise RestoreError(f"row {i} lacks {', '.join(missing)}; expected method, setting, psnr, seconds_per_image")
        psnr, seconds = row["psnr"], row["seconds_per_image"]
        # A failed method has no PSNR and a log axis cannot show zero seconds: skip rather than fail the report.
        if psnr is None or seconds is None or not (math.isfinite(psnr) and seconds > 0 and math.isfinite(seconds)):
            continue
        points.append((str(row["method"]), str(row["setting"]), float(seconds), float(psnr)))
    if not points:
        raise RestoreError("no row has both a finite PSNR and a positive seconds_per_image; nothing to plot")
    return points


def _plain_log_ticks(ax: Any) -> None:
    """Tick labels 0.5, 2, 30 rather than 5x10^-1 (runs often span less than a decade); minor ones at 2 and 5 only."""
    from matplotlib.ticker import FuncFormatter

    def minor(v: float, _: Any) -> str:
        return f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor))


def psnr_vs_seconds(rows: Sequence[dict], path: str | os.PathLike, title: str) -> Path:
    """PSNR against seconds per image (log scale), one colour per method, each point labelled with its setting.

    Args:
        rows: dicts with "method", "setting" (e.g. "sigma 25", "x4"), "psnr" (dB) and
            "seconds_per_image" (the rows of ``restore.bench.report.summarise``).
            Rows whose PSNR or time is missing or not positive are left out.
        path: the output ``.png``.
        title: the figure's title.

    Returns:
        The path written.

    Raises:
        RestoreError: matplotlib missing, malformed rows, nothing plottable, not a .png path, write failure.
    """
    p = _png_path(path)
    points = _points(rows)
    fig = _figure("psnr_vs_seconds", 720, 480)
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(m for m, *_ in points))
    for k, method in enumerate(methods):
        mine = [pt for pt in points if pt[0] == method]
        ax.plot([pt[2] for pt in mine], [pt[3] for pt in mine], "o", color=f"C{k % 10}", label=method)
        for _, setting, seconds, psnr in mine:
            ax.annotate(setting, (seconds, psnr), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    ax.margins(x=0.15, y=0.08)  # room for the labels of the outermost points
    ax.set_xlabel("seconds per image (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(str(title))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, p, "plot")


# ------------------------------------------------------------------------ images


def _as_chw(image: Any, name: str) -> torch.Tensor:
    """A float32 C x H x W CPU tensor (C = 1 or 3) from a 1 x C x H x W or C x H x W tensor."""
    if not isinstance(image, torch.Tensor):
        raise RestoreError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    x = image.detach()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] not in (1, 3) or min(x.shape[1:]) < 1:
        raise RestoreError(f"{name} must be 1 x C x H x W or C x H x W with C = 1 or 3, got shape {tuple(image.shape)}")
    x = x.to("cpu", torch.float32)
    if not torch.isfinite(x).all():
        raise RestoreError(f"{name} contains NaN or inf values")
    return x


def _to_display(x: torch.Tensor) -> np.ndarray:
    """H x W (gray) or H x W x 3 array in [0, 1] for imshow; outputs are not always clipped by their restorer."""
    arr = x.clamp(0, 1).numpy().transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else arr


def _display_scale(h: int, w: int) -> float:
    """Screen pixels per image pixel: an integer magnification for small crops, so that pixels stay square."""
    side = max(h, w)
    if side > _PANEL_MAX:
        return _PANEL_MAX / side
    return float(max(1, _PANEL_MIN // side))


def _show(ax: Any, x: torch.Tensor, scale: float = 1.0) -> None:
    gray = x.shape[0] == 1
    # Nearest when magnifying keeps pixels square and visible; antialiased when shrinking avoids moire.
    interpolation = "nearest" if scale >= 1 else "antialiased"
    ax.imshow(_to_display(x), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation=interpolation)
    ax.set_axis_off()


def _check_panels(panels: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(panels, (str, bytes)) or not isinstance(panels, Sequence) or not panels:
        raise RestoreError("panels must be a non-empty list of (label, image) pairs")
    checked = []
    for i, panel in enumerate(panels):
        if not (isinstance(panel, tuple | list) and len(panel) == 2 and isinstance(panel[0], str)):
            raise RestoreError(f"panel {i} must be a (label, image) pair with a str label, got {type(panel).__name__}")
        checked.append((panel[0], _as_chw(panel[1], f"panel {i} ({panel[0]!r})")))
    return checked


def _upscale_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x[None], size=size, mode="nearest-exact")[0]


def montage(panels: Sequence[tuple[str, torch.Tensor]], path: str | os.PathLike, title: str | None = None) -> Path:
    """One row of images with a label under each, e.g. degraded | restored | clean.

    Smaller images (a low-resolution SR input) are magnified nearest-neighbour to
    the largest panel's size, so that their pixels stay visible. Small crops are
    drawn magnified by an integer factor, large ones shrunk to fit.

    Args:
        panels: (label, image) pairs; an image is a 1 x C x H x W or C x H x W float
            tensor in [0, 1] (clipped for display), C = 1 or 3. A label may hold a newline.
        path: the output ``.png``.
        title: a line above the panels.

    Returns:
        The path written.

    Raises:
        RestoreError: matplotlib missing, no panels, a malformed panel or image, not a .png path, write failure.
    """
    p = _png_path(path)
    checked = _check_panels(panels)
    size = max((tuple(x.shape[-2:]) for _, x in checked), key=lambda hw: hw[0] * hw[1])
    scale = _display_scale(*size)
    pw, ph = size[1] * scale, size[0] * scale
    gap, label_band, title_band = 8, 40, 30 if title else 0
    width, height = len(checked) * (pw + gap) + gap, title_band + ph + label_band
    fig = _figure("montage", width, height)
    for i, (label, x) in enumerate(checked):
        left = gap + i * (pw + gap)
        ax = fig.add_axes((left / width, label_band / height, pw / width, ph / height))
        _show(ax, _upscale_to(x, size), scale)
        fig.text((left + pw / 2) / width, label_band / 2 / height, label, ha="center", va="center", fontsize=10)
    if title:
        fig.text(0.5, 1 - title_band / 2 / height, title, ha="center", va="center", fontsize=11)
    return _save(fig, p, "montage")


# ------------------------------------------------------------------ std vs error


def _channel_rms(x: torch.Tensor) -> torch.Tensor:
    """H x W root mean square over channels: a per-pixel std and a per-pixel error on one footing."""
    return x.pow(2).mean(0).sqrt()


def _colorbar_axes(ax: Any) -> Any:
    """An axes for a colour bar beside ``ax``, taken from ``ax``'s own space so that panels keep one size."""
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    return make_axes_locatable(ax).append_axes("right", size="5%", pad=0.08)


def _map_panel(fig: Any, ax: Any, values: torch.Tensor, title: str) -> None:
    top = float(torch.quantile(values.flatten(), _MAP_QUANTILE))
    im = ax.imshow(values.numpy(), cmap=_ERROR_MAP, vmin=0, vmax=max(top, 1e-8), interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    fig.colorbar(im, cax=_colorbar_axes(ax))


def std_vs_error(
    image: torch.Tensor, std: torch.Tensor, error: torch.Tensor, path: str | os.PathLike, title: str | None = None
) -> Path:
    """Restored image, posterior std map and absolute error map side by side (VBLE's uncertainty check).

    A std that predicts the error lights up the same places in both maps. Both
    maps use one colour map, from 0 to their own 99.5th percentile, with a colour
    bar each; colour images are reduced to the root mean square over channels.

    Args:
        image: the restored image, 1 x C x H x W or C x H x W, C = 1 or 3.
        std: the per-pixel posterior std, same H x W, 1 or C channels.
        error: restored minus clean (its sign is dropped), same H x W, 1 or C channels.
        path: the output ``.png``.
        title: a line above the panels.

    Returns:
        The path written.

    Raises:
        RestoreError: matplotlib missing, malformed or mismatched tensors, not a .png path, write failure.
    """
    p = _png_path(path)
    x = _as_chw(image, "image")
    maps = {}
    for name, t in (("std", std), ("error", error)):
        m = _as_chw(t, name)
        if m.shape[1:] != x.shape[1:]:
            raise RestoreError(f"{name} is {m.shape[1]}x{m.shape[2]}, the image is {x.shape[1]}x{x.shape[2]}")
        maps[name] = _channel_rms(m)
    fig = _figure("std_vs_error", 1200, 440 if title else 400)
    axes = fig.subplots(1, 3)
    _show(axes[0], x)
    axes[0].set_title("restored", fontsize=10)
    _colorbar_axes(axes[0]).set_axis_off()  # an empty bar's room: the three panels line up
    _map_panel(fig, axes[1], maps["std"], "posterior std")
    _map_panel(fig, axes[2], maps["error"], "|error|")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, p, "plot")
