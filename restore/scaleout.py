"""Scale-out on Dask: ``map_overlap`` over raster chunks, one restorer per worker.

A driver over the pipeline's block function, as ``restore.raster`` is in one
process; both write through a ``RasterMerger`` and share no code but the
file classes of ``restore.raster_files``.

Each chunk arrives with a halo of ``pipeline.halo`` pixels from its neighbours
(none beyond the image edge), runs through the same block function as the
single-process path, and the chunk's centre is kept. The restorer travels to
each worker once (a Delayed key of the graph), not once per chunk.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from restore.errors import RestoreError
from restore.memory import pin_malloc_thresholds
from restore.raster_files import RasterReader, RasterWriter
from restore.raster_merger import RasterMerger


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover
        raise RestoreError("scale-out needs Dask: pip install 'dask[array]' distributed") from None
    return dask, da


def _restore_chunk(block: np.ndarray, *, job, halo: int, block_info=None) -> np.ndarray:
    """Restore one C x h x w chunk with its halo and return its centre at output resolution."""
    pipeline, groups = job
    if os.environ.get("RESTORE_DASK_WORKER_THREADS"):
        torch.set_num_threads(int(os.environ["RESTORE_DASK_WORKER_THREADS"]))
    info = block_info[0]
    (_, r_loc, c_loc), (_, r_num, c_num) = info["chunk-location"], info["num-chunks"]
    top = halo if r_loc > 0 else 0
    left = halo if c_loc > 0 else 0
    bottom = halo if r_loc < r_num - 1 else 0
    right = halo if c_loc < c_num - 1 else 0
    # Where this chunk's halo starts in the image (block_info[0] counts in the
    # overlapped array; the output's location, over the upscale, is the core's).
    out_rows, out_cols = block_info[None]["array-location"][1:]
    origin = (out_rows[0] // pipeline.upscale - top, out_cols[0] // pipeline.upscale - left)
    y = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))[None]
    h, w = y.shape[-2:]
    region = (top, h - bottom, left, w - right)
    return pipeline.restore_block(y, groups, origin=origin, region=region).image[0].numpy()


def restore_dask_array(pipeline, array, *, prepared=None):
    """Lazily restore a C x H x W (or H x W) Dask array of floats in [0, 1]; returns a Dask array.

    Args:
        pipeline: a ``restore.pipeline.Pipeline``.
        array: the measurement; chunks must be at least ``pipeline.halo`` wide.
        prepared: ``pipeline.prepared(...)`` for this image; default:
            prepared on the array's central 1024 x 1024 crop.
    """
    dask, da = _import_dask()
    squeeze = array.ndim == 2
    if squeeze:
        array = array[None]
    if array.ndim != 3:
        raise RestoreError(f"a Dask array must be C x H x W or H x W, got {array.ndim} dimensions")
    array = array.astype(np.float32).rechunk({0: -1})
    depth, s = pipeline.halo, pipeline.upscale
    if min(min(array.chunks[1]), min(array.chunks[2])) < depth and max(array.shape[1:]) > depth:
        array = array.rechunk({1: max(depth, 256), 2: max(depth, 256)})
    if prepared is None:
        _, h, w = array.shape
        r0, c0 = max(0, (h - 1024) // 2), max(0, (w - 1024) // 2)
        sample = torch.from_numpy(np.asarray(array[:, r0 : r0 + 1024, c0 : c0 + 1024].compute()))[None]
        prepared = pipeline.prepared(sample)
    job = dask.delayed((pipeline, prepared), pure=True)
    chunks = (array.chunks[0], tuple(c * s for c in array.chunks[1]), tuple(c * s for c in array.chunks[2]))
    out = da.map_overlap(
        _restore_chunk, array, depth={0: 0, 1: depth, 2: depth}, boundary="none", trim=False,
        dtype=np.float32, chunks=chunks, job=job, halo=depth,
    )
    return out[0] if squeeze else out


class _FloatView:
    """A RasterReader seen as a float32 C x H x W array (what ``dask.array.from_array`` reads)."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.shape = reader.shape
        self.ndim = 3
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        bands, rows, cols = (tuple(key) + (slice(None),) * 3)[:3]
        r0, r1, _ = rows.indices(self.reader.height)
        c0, c1, _ = cols.indices(self.reader.width)
        return self.reader.read(r0, r1, c0, c1)[bands]


def connect(scheduler: str, workers: int | None = None):
    """A Dask client: a LocalCluster for "local", else the scheduler at that address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover
        raise RestoreError("--scheduler needs dask.distributed: pip install distributed") from None
    if scheduler == "local":
        # One torch thread per worker process: the workers are the parallelism.
        os.environ.setdefault("RESTORE_DASK_WORKER_THREADS", "1")
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster)
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as e:
        raise RestoreError(f"cannot reach the Dask scheduler at {scheduler}: {str(e).splitlines()[0]}") from None


def restore_raster_dask(pipeline, src: str | Path, dst: str | Path, *, value_range: float | None = None,
                        overwrite: bool = False, scheduler: str, workers: int | None = None) -> None:
    """Restore raster ``src`` into GeoTIFF ``dst`` on a Dask cluster; the client writes blocks as they finish.

    Args:
        pipeline: a ``restore.pipeline.Pipeline``.
        src, dst: input raster and output GeoTIFF.
        value_range: the integer value that means 1.0 (e.g. 4095 for 12-bit data).
        overwrite: replace an existing ``dst``.
        scheduler: "local" (a LocalCluster) or a Dask scheduler address.
        workers: LocalCluster size (default: the CPU count).
    """
    from distributed import as_completed

    pin_malloc_thresholds()
    reader = RasterReader(src, value_range)
    writer = RasterWriter(dst, reader, upscale=pipeline.upscale, overwrite=overwrite)  # refuses before connecting
    _, da = _import_dask()
    client = connect(scheduler, workers)
    try:
        array = da.from_array(_FloatView(reader), chunks=(reader.count, pipeline.block, pipeline.block))
        prepared = pipeline.prepared(torch.from_numpy(reader.centre_sample())[None])
        out = restore_dask_array(pipeline, array, prepared=prepared)
        s = pipeline.upscale
        row_starts = np.cumsum((0,) + out.chunks[1][:-1])
        col_starts = np.cumsum((0,) + out.chunks[2][:-1])
        blocks = out.to_delayed()[0]
        pending = [(i, j) for i in range(blocks.shape[0]) for j in range(blocks.shape[1])]
        # A bounded number of blocks in flight keeps memory flat whatever the raster size.
        in_flight = max(2, 2 * len(client.scheduler_info().get("workers", {})))
        with RasterMerger(writer) as merger:
            futures = {}
            queue = as_completed()
            while pending or futures:
                while pending and len(futures) < in_flight:
                    i, j = pending.pop(0)
                    f = client.compute(blocks[i, j])
                    futures[f] = (i, j)
                    queue.add(f)
                f = next(queue)
                i, j = futures.pop(f)
                values = f.result()
                r0, c0 = int(row_starts[i]), int(col_starts[j])
                core = (r0, r0 + values.shape[1], c0, c0 + values.shape[2])
                merger.add(core, values, reader.nodata_mask(*(v // s for v in core)))
                f.release()
    finally:
        client.close()
        if scheduler == "local" and client.cluster is not None:
            client.cluster.close()
