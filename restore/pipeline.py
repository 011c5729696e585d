"""Run any restorer over images of any size: tiles with a halo, batched on the device, blended.

``Pipeline(restorer, operator, tile=512, overlap=64, batch_size=8, device="cuda")``
is called on a tensor, a NumPy array, an image path or a Dask array. Rasters
larger than memory go through :meth:`Pipeline.restore_file`, which streams
GeoTIFF blocks (see ``restore.raster``); Dask arrays go through
``restore.scaleout``. All paths share one block function, so they give the
same pixels.
"""
from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from restore.errors import RestoreError
from restore.noise_field import PositionalNoise
from restore.operators.base import Operator, check_image
from restore.pixel_values import check_finite, check_unit_range, operator_noise_std
from restore.restorers.base import Restoration, Restorer, load
from restore.tiling import Merger, Tile, TileGrid

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Side of the centre crop whole-image decisions (noise level, adaptation) are made on.
SAMPLE_SIDE = 1024
DEFAULT_OVERLAP = 64
# Tiles are not halved below this on out-of-memory.
MIN_TILE = 32
# No tile core is smaller than this, nor than its halo: smaller ones spend most of their time on context.
SMALLEST_TILE = 16
NONFINITE_FIX = "replace or mask them first (e.g. torch.nan_to_num)"
RANGE_FIX = "divide the image by its full-scale value first (e.g. x / {scale})"


def min_tile(halo: int) -> int:
    """The smallest tile side worth running with a halo of ``halo`` pixels."""
    return max(SMALLEST_TILE, int(halo))


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def centre_crop(y: torch.Tensor, side: int = SAMPLE_SIDE) -> torch.Tensor:
    """The central side x side crop (or all) of a ... x H x W tensor."""
    h, w = y.shape[-2:]
    r, c = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return y[..., r : r + side, c : c + side]


def upscale_of(operator: Operator) -> int:
    """The integer factor outputs are larger than measurements (4 for x4 SR)."""
    factor = 1.0 / operator.scale
    if abs(factor - round(factor)) > 1e-6 or round(factor) < 1:
        raise RestoreError(f"the tiler needs an integer output/input size ratio, got {factor:g}")
    return round(factor)


@dataclass
class BandGroup:
    """Bands ``bands`` of an image, restored together by ``restorer`` inverting ``operator``."""

    bands: slice
    restorer: Restorer
    operator: Operator


def band_slices(channels: int, accepted: tuple[int, ...] | None) -> list[slice]:
    """How to split ``channels`` bands for a restorer taking ``accepted`` channel counts.

    All together when it can. Otherwise, for a restorer of RGB and gray images,
    consecutive triples go through as RGB and the rest one by one as gray (a
    4-band RGB+NIR raster: bands 1-3 as colour, band 4 as gray, so the colour
    prior still sees the visible bands together); for a gray-only restorer,
    every band alone.
    """
    if accepted is None or channels in accepted:
        return [slice(0, channels)]
    if 1 not in accepted:
        raise RestoreError(f"the model takes {' or '.join(map(str, accepted))}-channel images, not {channels} bands")
    triples = channels // 3 if 3 in accepted else 0
    groups = [slice(3 * k, 3 * k + 3) for k in range(triples)]
    return groups + [slice(c, c + 1) for c in range(3 * triples, channels)]


class Pipeline:
    """A restorer and an operator, run tile by tile over images of any size.

    Args:
        restorer: a Restorer, or a registry name to load.
        operator: the degradation to invert.
        tile: core side of a tile in input pixels; 0 runs the restorer once on the whole image.
        overlap: pixels neighbouring tiles share and blend (raised-cosine); default
            a quarter of the tile, at most 64, for stochastic restorers, and 0 for
            deterministic ones (their halo already makes tiles agree).
        batch_size: tiles per restorer call.
        device: "cpu", "cuda", "cuda:1", ...
        precision: "fp32", "fp16" or "bf16" compute (outputs and accumulators stay fp32;
            a tile batch that comes out NaN or inf is redone in fp32).
        halo: context around each tile; default the restorer's plus the operator's.
        seed: seeds the restorer's random choices (positional noise for stochastic ones).
        block: side of the blocks a file is streamed in (input pixels).
        progress: show a progress bar over tiles.
        log: where messages (fallbacks, tile halving) go.

    Example:
        >>> pipe = Pipeline("lidia", Denoise(sigma=25 / 255), tile=256, overlap=32)  # doctest: +SKIP
        >>> clean = pipe(noisy)  # tensor in, tensor out  # doctest: +SKIP
    """

    def __init__(
        self,
        restorer: Restorer | str,
        operator: Operator,
        *,
        tile: int = 512,
        overlap: int | None = None,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        halo: int | None = None,
        seed: int = 0,
        block: int = 2048,
        progress: bool = False,
        log: Callable[[str], None] = _say,
    ) -> None:
        if precision not in PRECISIONS:
            raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if batch_size < 1:
            raise RestoreError(f"batch size must be >= 1, got {batch_size}")
        self.restorer = load(restorer) if isinstance(restorer, str) else restorer
        if overlap is None:
            # A deterministic restorer with a full halo gives the same core whatever
            # the tile, so blending would only cost time; samplers need it.
            overlap = min(DEFAULT_OVERLAP, tile // 4) if self.restorer.stochastic else 0
        if tile < 0 or overlap < 0 or (tile and overlap >= tile):
            raise RestoreError(f"need tile >= 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
        self.device = torch.device(device)
        self.restorer.to(self.device)
        self.operator = operator
        self.tile, self.overlap, self.batch_size = tile, overlap, batch_size
        self.precision = precision
        self.halo = halo if halo is not None else self.restorer.halo + math.ceil(operator.halo)
        if tile and tile < min_tile(self.halo):
            raise RestoreError(f"tile {tile} is too small for a halo of {self.halo} pixels (this restorer and operator): "
                               f"use a tile of at least {min_tile(self.halo)}, or 0 for the whole image")
        self.seed = seed
        self.block = max(block, tile)
        self.progress = progress
        self.log = log
        self.upscale = upscale_of(operator)
        self._warned_precision = False

    # ---- entry points -----------------------------------------------------------
    def __call__(self, x):
        """Restore a tensor (C x H x W or B x C x H x W), an H x W [x C] array, an image path or a Dask array.

        Tensors and paths give a tensor; arrays give a float32 array in [0, 1]
        laid out as the input; Dask arrays (C x H x W) give a lazy Dask array.
        """
        if isinstance(x, torch.Tensor):
            out = self.run(x if x.ndim == 4 else x[None]).image
            return out if x.ndim == 4 else out[0]
        if isinstance(x, (str, Path)):
            from restore.io import read_image

            return self.run(read_image(x).pixels).image
        if isinstance(x, np.ndarray):
            return self._call_numpy(x)
        if type(x).__module__.startswith("dask"):
            from restore.scaleout import restore_dask_array

            return restore_dask_array(self, x)
        raise RestoreError(f"cannot restore a {type(x).__name__}: pass a tensor, an array, a path or a Dask array")

    def _call_numpy(self, x: np.ndarray) -> np.ndarray:
        from restore.io import from_numpy_image

        out = self.run(from_numpy_image(x)).image[0]
        return out.permute(1, 2, 0).numpy() if x.ndim == 3 else out[0].numpy()

    def check_input(self, y: torch.Tensor, origin: tuple[int, int] = (0, 0), what: str = "the image") -> None:
        """Refuse a non-tensor, NaN or inf pixels, and float values far outside [0, 1] (e.g. 0-255 data)."""
        check_image(y, what)
        check_finite(y, what, NONFINITE_FIX, origin)
        check_unit_range(y, what, RANGE_FIX, operator_noise_std(self.operator))

    def run(self, y: torch.Tensor) -> Restoration:
        """Restore B x C x H x W ``y``; each image is prepared (noise level, adaptation) as a whole."""
        self.check_input(y)
        results = []
        for b in range(y.shape[0]):
            yb = y[b : b + 1]
            results.append(self.restore_block(yb, self.prepared(centre_crop(yb))))
        return _stack(results)

    def run_batch(self, y: torch.Tensor) -> Restoration:
        """Restore B x C x H x W ``y`` (images of one size) with the tiles of all images sharing restorer calls.

        The same pixels as :meth:`run`. Images share calls only when preparing
        leaves the restorer and the operator as they are for every image (a
        given noise level, no adaptation): what ``prepare`` returns otherwise
        belongs to one image (an estimated sigma, LIDIA's image mean, an
        adapted network), so those images run one by one as in :meth:`run`.
        """
        self.check_input(y)
        groups = [self.prepared(centre_crop(y[b : b + 1])) for b in range(y.shape[0])]
        if all(self._unprepared(g) for g in groups):
            return self.restore_block(y, groups[0])
        return _stack([self.restore_block(y[b : b + 1], g) for b, g in enumerate(groups)])

    def _unprepared(self, groups: list[BandGroup]) -> bool:
        return all(g.restorer is self.restorer and g.operator is self.operator for g in groups)

    def prepared(self, sample: torch.Tensor) -> list[BandGroup]:
        """What every tile of an image runs with, per band group (see ``Restorer.prepare``).

        Args:
            sample: a representative 1 x C x h x w crop of the image (e.g. its centre).
        """
        groups = []
        for bands in band_slices(sample.shape[1], self.restorer.channels):
            generator = torch.Generator().manual_seed(self.seed)
            restorer, operator = self.restorer.prepare(sample[:, bands].float(), self.operator, generator=generator)
            if self.operator.task == "denoise" and self.operator.sigma <= 0 < operator.sigma:
                self.log(f"estimated noise sigma = {operator.sigma * 255:.2f} (0-255 units)")
            groups.append(BandGroup(bands, restorer, operator))
        return groups

    def restore_file(self, src, dst, **kwargs) -> None:
        """Stream a raster file to ``dst`` block by block (see ``restore.raster.restore_raster``)."""
        from restore.raster import restore_raster

        restore_raster(self, src, dst, **kwargs)

    # ---- the block function every path shares ---------------------------------
    def restore_block(
        self,
        y: torch.Tensor,
        groups: list[BandGroup],
        origin: tuple[int, int] = (0, 0),
        region: tuple[int, int, int, int] | None = None,
    ) -> Restoration:
        """Restore ``y`` (held off the device) tile by tile.

        Args:
            y: the block, 1 x C x H x W with whatever context around ``region`` it has; or
                B x C x H x W, B images of one size that all run with ``groups`` (their tiles share batches).
            groups: from :meth:`prepared`.
            origin: the block's place in the whole image (for positional noise).
            region: (row0, row1, col0, col1) of ``y`` to restore (default all); the
                output covers just that region, at output resolution.

        On CUDA out-of-memory the tile is halved and the block redone.
        """
        self.check_input(y, origin)
        region = region or (0, y.shape[-2], 0, y.shape[-1])
        parts = [self._restore_bands(y[:, g.bands], g.restorer, g.operator, origin, region) for g in groups]
        if len(parts) == 1:
            return parts[0]
        cat = lambda name, dim: torch.cat([getattr(r, name) for r in parts], dim) if getattr(parts[0], name) is not None else None  # noqa: E731
        return Restoration(image=cat("image", 1), std=cat("std", 1), samples=cat("samples", 2),
                           info={"bands": [r.info for r in parts]})

    def _restore_bands(self, y: torch.Tensor, restorer: Restorer, operator: Operator, origin: tuple[int, int],
                       region: tuple[int, int, int, int]) -> Restoration:
        tile = self.tile
        while True:
            try:
                return self._tiled(y, restorer, operator, origin, region, tile)
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = (tile or max(y.shape[-2:])) // 2
                if smaller < MIN_TILE:
                    raise RestoreError(f"out of memory on {self.device} even with {MIN_TILE}-pixel tiles") from None
                self.log(f"out of memory on {self.device} with tile {tile or 'whole image'}: retrying with tile {smaller}")
                tile = self.tile = smaller
                self.overlap = min(self.overlap, tile // 2)

    def _tiled(self, y: torch.Tensor, restorer: Restorer, operator: Operator, origin: tuple[int, int],
               region: tuple[int, int, int, int], tile: int) -> Restoration:
        s = self.upscale
        grid = TileGrid(y.shape[-2], y.shape[-1], tile=tile, overlap=self.overlap, halo=self.halo,
                        multiple=restorer.tile_multiple, region=region)
        h, w = region[1] - region[0], region[3] - region[2]
        # One merger per image and output; tiles of every image go through the restorer in shared batches.
        mergers: list[dict[str, Merger]] = [{} for _ in range(y.shape[0])]
        items = [(b, t) for b in range(y.shape[0]) for t in grid]
        info: dict = {}
        bar = tqdm(total=len(items), unit="tile", disable=not self.progress or len(items) == 1, leave=False)
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            result = self._run_batch(y, batch, restorer, operator, origin)
            info = result.info
            for name in ("image", "std", "samples"):
                values = getattr(result, name)
                if values is None:
                    continue
                if name == "samples":
                    values = values.transpose(0, 1)  # S x B -> B x S: one entry per tile
                for k, (b, t) in enumerate(batch):
                    if name not in mergers[b]:
                        lead = tuple(values.shape[1:-3])
                        mergers[b][name] = Merger(values.shape[-3], h * s, w * s, self.overlap * s, lead)
                    rows, cols = t.core_in_read(s)
                    r0, r1, c0, c1 = t.core
                    core = ((r0 - region[0]) * s, (r1 - region[0]) * s, (c0 - region[2]) * s, (c1 - region[2]) * s)
                    mergers[b][name].add(core, values[k][..., rows, cols])
            bar.update(len(batch))
        bar.close()
        merged = {name: torch.stack([m[name].finalize() for m in mergers]) for name in mergers[0]}
        samples = merged.get("samples")
        return Restoration(
            image=merged["image"],
            std=merged.get("std"),
            samples=samples.transpose(0, 1) if samples is not None else None,  # B x S -> S x B
            info=info,
        )

    def _run_batch(
        self, y: torch.Tensor, batch: list[tuple[int, Tile]], restorer: Restorer, operator: Operator,
        origin: tuple[int, int],
    ) -> Restoration:
        """Restore the tiles of ``batch``, (image index in ``y``, tile) pairs, in one restorer call."""
        windows = [t.read for _, t in batch]
        tiles = torch.cat([t.crop(y[b : b + 1]) for b, t in batch]).to(self.device, torch.float32)
        op = operator.for_tiles(windows).to(self.device)
        origins = [(origin[0] + r0, origin[1] + c0) for r0, _, c0, _ in windows]
        result = self._restore(restorer, tiles, op, origins, self.precision)
        if self.precision != "fp32" and not _finite(result):
            if not self._warned_precision:
                self.log(f"{self.precision} gave NaN or inf values: redoing those tiles in fp32")
                self._warned_precision = True
            result = self._restore(restorer, tiles, op, origins, "fp32")
        return result

    def _restore(self, restorer: Restorer, tiles: torch.Tensor, op: Operator, origins, precision: str) -> Restoration:
        generator = torch.Generator().manual_seed(self.seed)
        noise = PositionalNoise(self.seed, [(r * self.upscale, c * self.upscale) for r, c in origins])
        dtype = PRECISIONS[precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
        with autocast:
            result = restorer.restore(tiles, op, generator=generator, noise=noise)
        result.image = result.image.float()
        return result


def _stack(results: list[Restoration]) -> Restoration:
    """One Restoration for a batch of images restored one by one."""
    if len(results) == 1:
        return results[0]
    return Restoration(
        image=torch.cat([r.image for r in results]),
        std=torch.cat([r.std for r in results]) if results[0].std is not None else None,
        samples=torch.cat([r.samples for r in results], dim=1) if results[0].samples is not None else None,
        info={"per_image": [r.info for r in results]},
    )


def _finite(result: Restoration) -> bool:
    return all(v is None or bool(torch.isfinite(v).all()) for v in (result.image, result.std, result.samples))
