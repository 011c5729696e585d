"""The work of a batch: read each input, group those that may share restorer calls, restore, write, log."""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import torch
from tqdm import tqdm

from restore.batch_inputs import Source, read_source
from restore.batch_options import BatchOptions
from restore.batch_outputs import std_map_path, write_result
from restore.batch_report import BatchReport, JobLog
from restore.batch_settings import changed
from restore.errors import RestoreError
from restore.io import ImageData, check_output, remove_stale_temps
from restore.operator_specs import build_operator, load_mask
from restore.operators.noise_level import estimate_image_sigma
from restore.pipeline import Pipeline
from restore.raster import wants_streaming
from restore.restorers import Restoration, Restorer

# What one bad input may raise, whatever its type: it is recorded as failed and the batch goes on.
INPUT_ERRORS = (Exception,)


@dataclass
class Ready:
    """An input read and waiting for its restorer call."""

    source: Source
    image: ImageData
    sigma: float  # [0, 1] units: given, estimated (denoise) or 0
    estimated: bool
    key: tuple  # inputs with equal keys run with the same operator and may share restorer calls
    seconds: float


class BatchWorker:
    """Reads inputs, groups those that may share restorer calls, restores, writes and logs them.

    Args:
        opts: the job's settings.
        model: the restorer's name, as records give it.
        restorer: the restorer every input runs through.
        journal: where each input's record goes (the log, or only the report).
        settings: this job's settings record (written with every output).
        earlier: the settings earlier runs made existing outputs with.
        started: when the job started (temp files older than this are stale).
        many: whether there are several inputs (names the std maps inside a folder).
        on_record: called with every record as it is written (the CLI prints it).
    """

    def __init__(self, opts: BatchOptions, model: str, restorer: Restorer, journal: JobLog | BatchReport, bar: tqdm,
                 settings: dict, earlier: dict[Path, dict], started: float, many: bool,
                 on_record: Callable[[dict], None] | None = None) -> None:
        self.opts, self.model, self.restorer, self.journal, self.bar = opts, model, restorer, journal, bar
        self.settings, self.earlier, self.started, self.many = settings, earlier, started, many
        self.on_record = on_record
        self.pending: list[Ready] = []
        self.removed: list[Path] = []

    def add(self, source: Source) -> None:
        """Skip, fail, stream or queue one input (restoring the queue when it cannot take it)."""
        self.removed += remove_stale_temps([source.output], before=self.started)
        if source.error is not None:
            self._record(source, "failed", error=source.error)
            return
        if source.output.exists() and not self.opts.overwrite:
            diff = changed(source, self.settings, self.earlier)
            if diff is not None:  # only for a lazy iterable: a known list was refused before any work
                self._record(source, "failed", error=f"{source.output} was made with other settings ({diff}); "
                                                     f"pass overwrite=True to redo it")
                return
            self._record(source, "skipped")
            return
        if source.path is not None and (self.opts.scheduler is not None or wants_streaming(source.path)):
            self.flush()
            self._stream(source)
            return
        start = perf_counter()
        try:
            ready = self._read(source, start)
        except INPUT_ERRORS as e:
            self._record(source, "failed", seconds=perf_counter() - start, error=one_line(e))
            return
        if self.pending and (len(self.pending) == self.opts.batch_size or self.pending[0].key != ready.key):
            self.flush()
        self.pending.append(ready)

    def flush(self) -> None:
        """Restore and write the queued inputs: together, or one by one when that fails (to blame the right one)."""
        group, self.pending = self.pending, []
        if not group:
            return
        start = perf_counter()
        try:
            results = self._restore(group)
        except INPUT_ERRORS as e:
            if len(group) > 1:
                for ready in group:
                    self.pending = [ready]
                    self.flush()
                return
            first = group[0]
            self._record(first.source, "failed", first, first.seconds + perf_counter() - start, one_line(e))
            return
        share = (perf_counter() - start) / len(group)
        for ready, result in zip(group, results):
            self._write(ready, result, share)

    # ---- one input ----------------------------------------------------------------
    def _read(self, source: Source, start: float) -> Ready:
        image = read_source(source, value_range=self.opts.value_range, max_pixels=self.opts.max_pixels)
        # What the output's format cannot hold fails now, before restoring.
        check_output(source.output, self._depth(image), channels=image.pixels.shape[1], value_range=image.value_range)
        sigma, estimated = self.opts.sigma, False
        if sigma is None and self.opts.task == "denoise":
            sigma, estimated = estimate_image_sigma(image.pixels), True
        mask = self.opts.mask
        # A random mask is the image's own; a mask file is shared by every image of its size.
        mask_key = source.output.name if mask is not None and mask.startswith("random:") else mask
        key = (tuple(image.pixels.shape), sigma, mask_key)
        return Ready(source, image, float(sigma or 0.0), estimated, key, perf_counter() - start)

    def _restore(self, group: list[Ready]) -> list[Restoration]:
        """The restorations of ``group`` (inputs of equal key) from shared restorer calls, one per input."""
        first = group[0]
        shape = tuple(first.image.pixels.shape[-2:])
        mask = load_mask(self.opts.mask, shape, self._mask_generator(first.source))
        op = build_operator(self.opts.task, sigma=first.sigma, mask=mask, **self.opts.operator_spec())
        result = self._pipeline(op).run_batch(torch.cat([r.image.pixels for r in group]))
        return split_restoration(result, len(group))

    def _write(self, ready: Ready, result: Restoration, share: float) -> None:
        start = perf_counter()
        source, o = ready.source, self.opts
        std_path = std_map_path(o.std_map, source.output, self.many) if o.std_map is not None else None
        try:
            write_result(source.output, result, ready.image, bit_depth=self._depth(ready.image), overwrite=o.overwrite,
                         protect=[source.path] if source.path is not None else [], std_path=std_path,
                         samples=o.save_samples, quality=o.quality, strip_metadata=o.strip_metadata)
        except INPUT_ERRORS as e:
            self._record(source, "failed", ready, ready.seconds + share + perf_counter() - start, one_line(e))
            return
        self._record(source, "done", ready, ready.seconds + share + perf_counter() - start)

    def _stream(self, source: Source) -> None:
        """A (Geo)TIFF restored block by block (in this process or on a Dask cluster), never whole in memory."""
        start = perf_counter()
        try:
            self._check_streamable(source)
            op = build_operator(self.opts.task, sigma=self.opts.sigma, **self.opts.operator_spec())
            self._pipeline(op).restore_file(source.path, source.output, value_range=self.opts.value_range,
                                            overwrite=self.opts.overwrite, scheduler=self.opts.scheduler,
                                            workers=self.opts.workers)
        except INPUT_ERRORS as e:
            self._record(source, "failed", seconds=perf_counter() - start, error=one_line(e))
            return
        self._record(source, "done", seconds=perf_counter() - start)

    def _check_streamable(self, source: Source) -> None:
        o = self.opts
        if source.output.suffix.lower() not in (".tif", ".tiff"):
            raise RestoreError(f"a GeoTIFF input is written as a GeoTIFF: name the output .tif, not {source.output.suffix}")
        if o.mask is not None:
            raise RestoreError("inpainting a streamed raster is not supported; pass a PNG/TIFF without georeferencing")
        if o.bit_depth is not None:
            raise RestoreError("bit_depth does not apply to GeoTIFF outputs: they keep the input's pixel type")
        if o.std_map is not None or o.save_samples:
            raise RestoreError("std_map and save_samples are not written for streamed GeoTIFFs yet")

    def _pipeline(self, op) -> Pipeline:
        o = self.opts
        return Pipeline(self.restorer, op, tile=o.tile, overlap=o.overlap, batch_size=o.batch_size, device=o.device,
                        precision=o.precision, seed=o.seed, progress=o.progress and not self.many,
                        log=lambda message: tqdm.write(message) if o.progress else None)

    def _depth(self, image: ImageData) -> int:
        return self.opts.bit_depth or image.bit_depth

    def _mask_generator(self, source: Source) -> torch.Generator:
        # Seeded by the output's name, not the input's place in the run, so that a rerun draws the same mask.
        return torch.Generator().manual_seed(self.opts.seed * 1_000_003 + zlib.crc32(source.output.name.encode()))

    def _record(self, source: Source, status: str, ready: Ready | None = None, seconds: float = 0.0,
                error: str | None = None) -> None:
        record = {
            "input": source.label, "output": str(source.output), "status": status,
            "sigma": None if ready is None else round(ready.sigma, 6),
            "sigma_estimated": None if ready is None else ready.estimated, "seconds": round(seconds, 4),
            "error": error, "model": self.model, "task": self.opts.task,
            **({"settings": self.settings} if status == "done" else {}),
        }
        self.journal.write(record)
        if self.on_record is not None:
            self.on_record(record)
        self.bar.update(1)


def split_restoration(result: Restoration, count: int) -> list[Restoration]:
    """One Restoration per image of a batched one (samples are S x B x ...: split on their second axis)."""
    if count == 1:
        return [result]
    images = result.image.split(1)
    stds = result.std.split(1) if result.std is not None else [None] * count
    samples = result.samples.split(1, dim=1) if result.samples is not None else [None] * count
    return [Restoration(image=i, std=s, samples=k, info=result.info) for i, s, k in zip(images, stds, samples)]


def one_line(error: BaseException) -> str:
    """An error as one line, in its own words (its type when it has none)."""
    if isinstance(error, MemoryError):
        return "out of memory: use a smaller tile or a smaller image"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, RestoreError) else f"unexpected {type(error).__name__}: {text}"
