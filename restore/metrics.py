"""Image-quality metrics with their conventions written down.

Conventions shared by every metric here:
    * Inputs are B x C x H x W float tensors of the same shape; the metric is
      computed per image (over all of C, H, W) and, with ``reduction="mean"``,
      averaged over the batch.
    * ``data_range`` is the value of a white pixel: 1.0 for the toolkit's
      [0, 1] tensors, 255 for 8-bit values. Nothing is quantised here; to
      reproduce a paper's protocol, quantise (e.g. round to 8 bits) first.
    * ``crop`` removes that many pixels from every border before measuring
      (SR papers crop ``scale`` pixels).
    * Channels are used as given. For the Y-channel numbers that SR papers
      report, pass ``to_y(x)`` and ``to_y(y)``.
"""
from __future__ import annotations

import functools
import os
import warnings
from urllib.parse import urlparse

import piq
import torch

from restore.errors import RestoreError

# torchvision weights that each LPIPS backbone loads from the torch hub cache.
_LPIPS_BACKBONES = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}


class MetricUnavailable(RestoreError):
    """A metric cannot run here (a package or pretrained backbone is missing)."""


def _check_pair(x: torch.Tensor, y: torch.Tensor, crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two B x C x H x W tensors and return them border-cropped."""
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4 or not t.is_floating_point():
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise RestoreError(f"{name} must be a floating B x C x H x W tensor, got {got}")
    if x.shape != y.shape:
        raise RestoreError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not isinstance(crop, int) or crop < 0 or 2 * crop >= min(x.shape[-2:]):
        raise RestoreError(f"crop must be an int in [0, {(min(x.shape[-2:]) - 1) // 2}], got {crop!r}")
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x, y


def _check_range(data_range: float) -> float:
    if not isinstance(data_range, (int, float)) or not data_range > 0:
        raise RestoreError(f"data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none"):
        raise RestoreError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    _check_reduction(reduction)
    return values.mean() if reduction == "mean" else values


def psnr(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, crop: int = 0, reduction: str = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE).

    The MSE is taken per image over all channels and pixels, accumulated in
    float64; values are used as given (not clipped or quantised). Identical
    images give ``inf``.

    Args:
        x: B x C x H x W estimate.
        y: B x C x H x W reference.
        data_range: value of white (1.0 for [0, 1] images, 255 for 8-bit).
        crop: pixels removed from each border before measuring.
        reduction: "mean" (mean of the per-image PSNRs) or "none" (shape B).

    Returns:
        float64 tensor: a scalar for "mean", shape (B,) for "none".

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); y = torch.full((1, 1, 4, 4), 0.1)
        >>> round(float(psnr(x, y)), 6)
        20.0
    """
    peak = _check_range(data_range)
    x, y = _check_pair(x, y, crop)
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(dim=1)
    return _reduce(10.0 * torch.log10(peak**2 / mse), reduction)


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, crop: int = 0, reduction: str = "mean"
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) via ``piq.ssim``.

    Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03, computed per
    channel and averaged over channels; no downsampling (as in the SR
    literature, unlike piq's default). Inputs are clipped to [0, data_range]
    first because piq refuses values outside that range; out-of-range values
    therefore count as the nearest valid value.

    Args:
        x: B x C x H x W estimate.
        y: B x C x H x W reference.
        data_range: value of white (1.0 for [0, 1] images, 255 for 8-bit).
        crop: pixels removed from each border before measuring.
        reduction: "mean" over the batch, or "none" (shape B).

    Returns:
        float tensor in [-1, 1]: a scalar for "mean", shape (B,) for "none".
    """
    peak = _check_range(data_range)
    x, y = _check_pair(x, y, crop)
    if min(x.shape[-2:]) < 11:
        raise RestoreError(f"ssim needs images of at least 11 x 11 pixels after crop, got {tuple(x.shape[-2:])}")
    _check_reduction(reduction)
    x, y = x.clamp(0.0, peak), y.clamp(0.0, peak)
    values = piq.ssim(x, y, data_range=peak, reduction="none", downsample=False)
    return _reduce(values, reduction)


def to_y(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma of RGB images in [0, 1], in the studio-swing 16-235 range.

    Y = 16/255 + (65.481 R + 128.553 G + 24.966 B) / 255, the convention of
    MATLAB's ``rgb2ycbcr`` used by SR papers: black maps to 16/255 and white
    to 235/255. The result is not rounded.

    Args:
        x: B x 3 x H x W RGB tensor in [0, 1].

    Returns:
        B x 1 x H x W tensor in [16/255, 235/255].
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise RestoreError(f"to_y expects a floating B x 3 x H x W RGB tensor, got {got}")
    weights = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return 16.0 / 255.0 + (x * weights).sum(dim=1, keepdim=True) / 255.0


def _lpips_missing(net: str) -> str | None:
    """Why LPIPS with backbone ``net`` cannot run here, or None if it can."""
    if net not in _LPIPS_BACKBONES:
        raise RestoreError(f"net must be one of {sorted(_LPIPS_BACKBONES)}, got {net!r}")
    try:
        import lpips  # noqa: F401  (optional dependency)
        import torchvision.models as tvm
    except ImportError as exc:
        return f"LPIPS needs the optional packages lpips and torchvision ({exc}); pip install 'restore[lpips]'"
    url = getattr(tvm, _LPIPS_BACKBONES[net]).IMAGENET1K_V1.url
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))
    if not os.path.isfile(path):
        return (
            f"LPIPS backbone weights not found at {path}; restore never downloads at run time: "
            f"place the file from {url} there to enable LPIPS"
        )
    return None


@functools.lru_cache(maxsize=4)
def _lpips_model(net: str, device: str) -> torch.nn.Module:
    import lpips

    try:
        # Safe from downloads: the backbone file was found in the hub cache,
        # and lpips' own linear-layer weights ship inside the package.
        with warnings.catch_warnings():
            # lpips still calls torchvision's deprecated ``pretrained=True``.
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            model = lpips.LPIPS(net=net, verbose=False)
    except Exception as exc:  # a corrupt cache file, an incompatible torchvision...
        raise MetricUnavailable(f"LPIPS ({net}) could not be built: {type(exc).__name__}: {exc}") from None
    return model.eval().requires_grad_(False).to(device)


def lpips_distance(x: torch.Tensor, y: torch.Tensor, net: str = "alex", reduction: str = "mean") -> torch.Tensor:
    """LPIPS perceptual distance (Zhang et al. 2018), lower is closer.

    Inputs are RGB in [0, 1] (clipped to it; gray images are repeated to three
    channels) and are mapped to lpips' [-1, 1] internally. Needs the ImageNet
    backbone weights in the torch hub cache; they are never downloaded.

    Args:
        x: B x 3 (or 1) x H x W estimate in [0, 1].
        y: B x 3 (or 1) x H x W reference in [0, 1].
        net: backbone: "alex" (the usual choice), "vgg" or "squeeze".
        reduction: "mean" over the batch, or "none" (shape B).

    Raises:
        MetricUnavailable: lpips or the backbone weights are not present.
    """
    x, y = _check_pair(x, y, 0)
    if x.shape[1] not in (1, 3):
        raise RestoreError(f"lpips_distance expects 1 or 3 channels, got {x.shape[1]}")
    _check_reduction(reduction)
    reason = _lpips_missing(net)
    if reason:
        raise MetricUnavailable(reason)
    model = _lpips_model(net, str(x.device))
    x, y = (t.clamp(0.0, 1.0).float().expand(-1, 3, -1, -1) for t in (x, y))
    with torch.no_grad():
        values = model(x, y, normalize=True).flatten()
    return _reduce(values, reduction)


def available_metrics() -> list[str]:
    """Names of the metrics that can run on this machine."""
    names = ["psnr", "ssim"]
    if _lpips_missing("alex") is None:
        names.append("lpips")
    return names
