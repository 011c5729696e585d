"""Stream rasters larger than memory in this process: read blocks with a halo, write block cores.

A driver over the pipeline's block function: the raster is cut into blocks
(``pipeline.block`` cores that partition it, each read with ``pipeline.halo``
pixels of context), each block is restored by ``Pipeline.restore_block`` and
its core goes to a ``RasterMerger``, which writes it into the output GeoTIFF.
Memory is that of one block whatever the raster's size. ``restore.scaleout``
does the same on a Dask cluster; the file classes both use live in
``restore.raster_files`` (and are importable from here, as before).
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from restore.memory import pin_malloc_thresholds
from restore.pixel_values import operator_noise_std
from restore.raster_files import RasterReader, RasterWriter, check_pixels, wants_streaming
from restore.raster_merger import RasterMerger
from restore.tiling import Tile, partition_into_blocks

# RasterReader, RasterWriter and wants_streaming: where callers found them before raster_files.py.
__all__ = ["RasterReader", "RasterWriter", "restore_raster", "stream_blocks", "wants_streaming"]


def stream_blocks(pipeline, reader: RasterReader) -> list[Tile]:
    """The blocks a raster is streamed in: ``pipeline.block`` cores (the whole raster for tile 0) with its halo.

    They partition the raster as Dask's chunks do (``restore.scaleout``), so both drivers restore the same blocks.
    """
    side = pipeline.block if pipeline.tile else max(reader.height, reader.width)
    return partition_into_blocks(reader.height, reader.width, side=side, halo=pipeline.halo)


def restore_raster(pipeline, src: str | Path, dst: str | Path, *, value_range: float | None = None,
                   overwrite: bool = False) -> None:
    """Restore raster ``src`` into GeoTIFF ``dst`` block by block in this process.

    Args:
        pipeline: a ``restore.pipeline.Pipeline``.
        src, dst: input raster and output GeoTIFF.
        value_range: the integer value that means 1.0 (e.g. 4095 for 12-bit data).
        overwrite: replace an existing ``dst``.
    """
    pin_malloc_thresholds()
    reader = RasterReader(src, value_range)
    writer = RasterWriter(dst, reader, upscale=pipeline.upscale, overwrite=overwrite)
    sample = torch.from_numpy(reader.centre_sample())[None]
    noise = operator_noise_std(pipeline.operator)
    check_pixels(reader, sample, (0, 0), noise)
    groups = pipeline.prepared(sample)
    blocks = stream_blocks(pipeline, reader)
    fallback = pipeline.start_call()  # a tile halved on one block stays halved for the rest of this file
    s = pipeline.upscale
    bar = tqdm(blocks, total=len(blocks), unit="block", disable=not pipeline.progress or len(blocks) == 1)
    with RasterMerger(writer) as merger:
        for block in bar:
            raw = reader.read_raw(*block.read)  # one read per block: pixels and nodata both come from it
            q0, _, p0, _ = block.read
            region = tuple(v - o for v, o in zip(block.core, (q0, q0, p0, p0)))
            y = torch.from_numpy(reader.pixels(raw))[None]
            check_pixels(reader, y, (q0, p0), noise)
            out = pipeline.restore_block(y, groups, origin=(q0, p0), region=region, fallback=fallback)
            nodata = reader.nodata_of(raw[:, region[0] : region[1], region[2] : region[3]])
            merger.add(block.core_at(upscale=s), out.image[0], nodata)
