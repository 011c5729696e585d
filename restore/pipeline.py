"""Run any restorer over images of any size: tiles with a halo, batched on the device, blended.

``Pipeline(restorer, operator, tile=512, overlap=64, batch_size=8)`` is called
on a tensor, a NumPy array, an image path or a Dask array. Its parts: a tile
grid (``restore.tiling.TileGrid``) splits each image, the restorer runs on
batches of tiles on the device, and a merger (``restore.merging``) blends the
cores in float32 off the device. Rasters larger than memory go through
:meth:`Pipeline.restore_file`, streamed block by block into a GeoTIFF
(``restore.raster``) or on a Dask cluster (``restore.scaleout``); both are
drivers over the one block function, :meth:`Pipeline.restore_block`, so every
path gives the same pixels.

A pipeline is immutable. Its settings (``restore.pipeline_settings``) are fixed
at construction: a call that runs out of memory shrinks its tiles for that
call only (``restore.tile_fallback``). It never moves a restorer it was given:
it runs on that restorer's device.
"""
from __future__ import annotations

import math
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from restore.bands import BandGroup, band_slices
from restore.devices import AUTO, check_device
from restore.errors import RestoreError
from restore.merging import RestorationMerger
from restore.noise_field import PositionalNoise
from restore.operators.base import Operator, check_image
from restore.operators.denoise import Denoise
# The one region whole-image decisions are made on (the noise level first, wherever it is estimated).
from restore.operators.noise_level import SAMPLE_SIDE, centre_crop
from restore.pipeline_settings import PRECISIONS, PipelineSettings, default_overlap, min_tile, same_device
from restore.pixel_values import check_finite, check_unit_range, operator_noise_std
from restore.restorers.base import Restoration, Restorer, load
from restore.tile_fallback import TileFallback, is_out_of_memory
from restore.tiling import Tile, TileGrid

__all__ = ["PRECISIONS", "BandGroup", "Pipeline", "band_slices", "centre_crop", "min_tile", "upscale_of"]

NONFINITE_FIX = "replace or mask them first (e.g. torch.nan_to_num)"
RANGE_FIX = "divide the image by its full-scale value first (e.g. x / {scale})"


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def upscale_of(operator: Operator) -> int:
    """The integer factor outputs are larger than measurements (4 for x4 SR)."""
    factor = 1.0 / operator.scale
    if abs(factor - round(factor)) > 1e-6 or round(factor) < 1:
        raise RestoreError(f"the tiler needs an integer output/input size ratio, got {factor:g}")
    return round(factor)


def restorer_on(restorer: Restorer | str, device: str | torch.device | None) -> tuple[Restorer, torch.device]:
    """The restorer a pipeline runs and the device it runs on, never moving a restorer it was given.

    A registry name is loaded and put on ``device`` (default "auto"): the
    pipeline owns that restorer. A restorer object runs where it already is:
    ``device`` defaults to its own, and another device is an error, since
    moving it would change the caller's object behind its back.
    """
    if isinstance(restorer, str):
        target = check_device(device if device is not None else AUTO)
        return load(restorer).to(target), target
    own = torch.device(getattr(restorer, "device", "cpu"))
    if device is not None and not _is_auto(device) and not same_device(own, check_device(device)):
        raise RestoreError(f"the restorer is on {own}, not on the requested device {device}: load it there "
                           f"(restore.load(name, device=...)) or move it first (restorer.to(device))")
    return restorer, own


def _is_auto(device: str | torch.device) -> bool:
    return isinstance(device, str) and device.strip().lower() == AUTO  # a restorer object: wherever it is


def _setting(name: str) -> property:
    return property(lambda self: getattr(self.settings, name), doc=f"``settings.{name}``, fixed at construction.")


class Pipeline:
    """A restorer and an operator, run tile by tile over images of any size.

    Args:
        restorer: a Restorer (run on its own device), or a registry name to load onto ``device``.
        operator: the degradation to invert.
        tile: core side of a tile in input pixels; 0 runs the restorer once on the whole image.
        overlap: pixels neighbouring tiles share and blend (raised-cosine); default
            a quarter of the tile, at most 64, for stochastic restorers, and 0 for
            deterministic ones (their halo already makes tiles agree).
        batch_size: tiles per restorer call.
        device: "auto", "cpu", "cuda", "cuda:1", "mps"; default (and "auto") the restorer's own. A restorer
            object on another device is refused, not moved.
        precision: "fp32", "fp16" or "bf16" compute (outputs and accumulators stay fp32;
            a tile batch that comes out NaN or inf is redone in fp32).
        halo: context around each tile; default the restorer's plus the operator's.
        seed: seeds the restorer's random choices (positional noise for stochastic ones).
        block: side of the blocks a file is streamed in (input pixels; at least the tile).
        progress: show a progress bar over tiles.
        log: where messages (fallbacks, tile halving) go.

    Settings cannot be assigned afterwards (``pipe.tile = 256`` raises
    AttributeError); :meth:`replace` builds a pipeline with other settings.

    Example:
        >>> pipe = Pipeline("lidia", Denoise(sigma=25 / 255), tile=256, overlap=32)  # doctest: +SKIP
        >>> clean = pipe(noisy)  # tensor in, tensor out  # doctest: +SKIP
    """

    tile = _setting("tile")
    overlap = _setting("overlap")
    batch_size = _setting("batch_size")
    device = _setting("device")
    precision = _setting("precision")
    halo = _setting("halo")
    seed = _setting("seed")
    block = _setting("block")
    progress = _setting("progress")

    def __init__(
        self,
        restorer: Restorer | str,
        operator: Operator,
        *,
        tile: int = 512,
        overlap: int | None = None,
        batch_size: int = 8,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        halo: int | None = None,
        seed: int = 0,
        block: int = 2048,
        progress: bool = False,
        log: Callable[[str], None] = _say,
    ) -> None:
        if precision not in PRECISIONS:  # before loading anything by name
            raise RestoreError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        restorer, device = restorer_on(restorer, device)
        settings = PipelineSettings(
            tile=tile, overlap=default_overlap(tile, restorer.stochastic) if overlap is None else overlap,
            batch_size=batch_size, device=device, precision=precision,
            halo=halo if halo is not None else restorer.halo + math.ceil(operator.halo),
            seed=seed, block=max(block, tile), progress=progress,
        )
        for name, value in (("restorer", restorer), ("operator", operator), ("settings", settings),
                            ("upscale", upscale_of(operator)), ("log", log)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"a Pipeline's settings are fixed at construction (cannot set {name!r}); "
                             f"build another one, e.g. pipe.replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a Pipeline's settings are fixed at construction (cannot delete {name!r})")

    def replace(self, **changes) -> "Pipeline":
        """A new pipeline with the same restorer and operator and ``changes`` to the settings (e.g. ``tile=256``)."""
        current = {name: getattr(self.settings, name) for name in self.settings.__dataclass_fields__}
        return Pipeline(self.restorer, self.operator, **(current | {"log": self.log} | changes))

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
        fallback = self.start_call()
        results = []
        for b in range(y.shape[0]):
            yb = y[b : b + 1]
            results.append(self.restore_block(yb, self.prepared(centre_crop(yb)), fallback=fallback))
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
        fallback = self.start_call()
        groups = [self.prepared(centre_crop(y[b : b + 1])) for b in range(y.shape[0])]
        if all(self._unprepared(g) for g in groups):
            return self.restore_block(y, groups[0], fallback=fallback)
        return _stack([self.restore_block(y[b : b + 1], g, fallback=fallback) for b, g in enumerate(groups)])

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
            if isinstance(self.operator, Denoise) and self.operator.sigma <= 0 < operator.sigma:
                self.log(f"estimated noise sigma = {operator.sigma * 255:.2f} (0-255 units)")
            groups.append(BandGroup(bands, restorer, operator))
        return groups

    def restore_file(self, src: str | Path, dst: str | Path, *, value_range: float | None = None,
                     overwrite: bool = False, scheduler: str | None = None, workers: int | None = None) -> None:
        """Restore raster ``src`` into GeoTIFF ``dst`` block by block (memory independent of the raster size).

        Args:
            src, dst: input raster and output GeoTIFF.
            value_range: the integer value that means 1.0 (e.g. 4095 for 12-bit data).
            overwrite: replace an existing ``dst``.
            scheduler: None (this process, ``restore.raster``), "local" (a Dask LocalCluster) or a
                Dask scheduler address (``restore.scaleout``).
            workers: LocalCluster size (default: the CPU count).
        """
        if scheduler is None:
            from restore.raster import restore_raster

            restore_raster(self, src, dst, value_range=value_range, overwrite=overwrite)
            return
        from restore.scaleout import restore_raster_dask

        restore_raster_dask(self, src, dst, value_range=value_range, overwrite=overwrite, scheduler=scheduler,
                            workers=workers)

    # ---- the block function every path shares ---------------------------------
    def start_call(self) -> TileFallback:
        """The state one call carries across its blocks: the configured tile, until it runs out of memory."""
        return TileFallback(self.tile, self.overlap)

    def restore_block(
        self,
        y: torch.Tensor,
        groups: list[BandGroup],
        origin: tuple[int, int] = (0, 0),
        region: tuple[int, int, int, int] | None = None,
        fallback: TileFallback | None = None,
    ) -> Restoration:
        """Restore ``y`` (held off the device) tile by tile.

        Args:
            y: the block, 1 x C x H x W with whatever context around ``region`` it has; or
                B x C x H x W, B images of one size that all run with ``groups`` (their tiles share batches).
            groups: from :meth:`prepared`.
            origin: the block's place in the whole image (for positional noise).
            region: (row0, row1, col0, col1) of ``y`` to restore (default all); the
                output covers just that region, at output resolution.
            fallback: the calling driver's :meth:`start_call`, so that a tile halved
                on one block stays halved for the next; default one for this block.

        On out-of-memory the tile is halved and the block redone; the pipeline's settings are left as they are.
        """
        self.check_input(y, origin)
        region = region or (0, y.shape[-2], 0, y.shape[-1])
        fallback = fallback or self.start_call()
        parts = [self._restore_bands(y[:, g.bands], g, origin, region, fallback) for g in groups]
        if len(parts) == 1:
            return parts[0]
        cat = lambda name, dim: torch.cat([getattr(r, name) for r in parts], dim) if getattr(parts[0], name) is not None else None  # noqa: E731
        return Restoration(image=cat("image", 1), std=cat("std", 1), samples=cat("samples", 2),
                           info={"bands": [r.info for r in parts]})

    def _restore_bands(self, y: torch.Tensor, group: BandGroup, origin: tuple[int, int],
                       region: tuple[int, int, int, int], fallback: TileFallback) -> Restoration:
        while True:
            try:
                return self._tiled(y, group, origin, region, fallback)
            except RuntimeError as error:
                if not is_out_of_memory(error):
                    raise
            # Out of the except block, so that a final "even with 32-pixel tiles" error does not chain the OOM.
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.log(fallback.shrink(max(y.shape[-2:]), self.device))

    def _tiled(self, y: torch.Tensor, group: BandGroup, origin: tuple[int, int], region: tuple[int, int, int, int],
               fallback: TileFallback) -> Restoration:
        s = self.upscale
        grid = TileGrid(y.shape[-2], y.shape[-1], tile=fallback.tile, overlap=fallback.overlap, halo=self.halo,
                        multiple=group.restorer.tile_multiple, region=region)
        merger = RestorationMerger(y.shape[0], (region[1] - region[0]) * s, (region[3] - region[2]) * s,
                                   fallback.overlap * s)
        # Tiles of every image go through the restorer in shared batches.
        items = [(b, t) for b in range(y.shape[0]) for t in grid]
        bar = tqdm(total=len(items), unit="tile", disable=not self.progress or len(items) == 1, leave=False)
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            result = self._run_batch(y, batch, group, origin, fallback)
            merger.add([(b, t.core_at(region[0], region[2], s), t.core_in_read(s)) for b, t in batch], result)
            bar.update(len(batch))
        bar.close()
        return merger.finalize()

    def _run_batch(self, y: torch.Tensor, batch: list[tuple[int, Tile]], group: BandGroup, origin: tuple[int, int],
                   fallback: TileFallback) -> Restoration:
        """Restore the tiles of ``batch``, (image index in ``y``, tile) pairs, in one restorer call."""
        windows = [t.read for _, t in batch]
        tiles = torch.cat([t.crop(y[b : b + 1]) for b, t in batch]).to(self.device, torch.float32)
        op = group.operator.for_tiles(windows).to(self.device)
        origins = [(origin[0] + r0, origin[1] + c0) for r0, _, c0, _ in windows]
        result = self._restore(group.restorer, tiles, op, origins, self.precision)
        if self.precision != "fp32" and not _finite(result):
            if not fallback.warned_precision:
                self.log(f"{self.precision} gave NaN or inf values: redoing those tiles in fp32")
                fallback.warned_precision = True
            result = self._restore(group.restorer, tiles, op, origins, "fp32")
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
