"""Images between numpy (H x W x C, channels last, integer or float) and torch (1 x C x H x W, float32)."""
from __future__ import annotations

import numpy as np
import torch

from restore.errors import RestoreError


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
