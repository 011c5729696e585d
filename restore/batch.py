"""``restore.run``: the one engine that restores files, folders, globs and arrays, resumably, logging every input.

The command line's ``restore denoise|deblur|sr|inpaint`` calls it too, so both
have the same features and give the same pixels.

>>> import restore
>>> report = restore.run("photos/**/*.png", task="denoise", model="lidia", sigma=25 / 255,
...                      out_dir="out/", device="cuda", batch_size=8)  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
47 done, 0 skipped, 3 failed (log: out/restore-log.jsonl)
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from time import time
from typing import Any

from tqdm import tqdm

from restore.batch_inputs import Naming, plan_sources, single_source
from restore.batch_options import BatchOptions, check_options, check_outputs_possible, check_tile, log_path
from restore.batch_report import BatchReport, JobLog, ReportOnly
from restore.batch_settings import earlier_settings, refuse_changed, settings_record
from restore.batch_worker import BatchWorker
from restore.devices import AUTO, check_device
from restore.errors import RestoreError
from restore.io import MAX_PIXELS
from restore.options import as_dict, build_options
from restore.restorers import Restorer, load, names_for_task, registered
from restore.tasks import task as task_row


def run(
    inputs: Any,
    *,
    task: str,
    model: str | Restorer,
    out_dir: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    sigma: float | None = None,
    kernel: str | None = None,
    scale: int | None = None,
    mask: str | os.PathLike | None = None,
    psf_mtf: float | None = None,
    sigma_poisson: float | None = None,
    device: str | None = None,
    batch_size: int = 8,
    tile: int = 512,
    overlap: int | None = None,
    precision: str = "fp32",
    seed: int = 0,
    overwrite: bool = False,
    log: str | os.PathLike | bool | None = None,
    progress: bool = True,
    value_range: float | None = None,
    max_pixels: float | None = MAX_PIXELS,
    bit_depth: int | None = None,
    std_map: str | os.PathLike | None = None,
    save_samples: int = 0,
    scheduler: str | None = None,
    workers: int | None = None,
    ext: str = "keep",
    suffix: str = "",
    quality: int | None = None,
    recursive: bool = False,
    strip_metadata: bool = False,
    on_record: Callable[[dict], None] | None = None,
    **model_options: Any,
) -> BatchReport:
    """Restore a batch of images into ``out_dir``, skipping those already done.

    Every option is checked before any work: bad ones raise ``RestoreError``.
    After that one bad input (corrupt, unreadable, wrong channels...) is
    recorded as failed with its one-line error and the batch goes on. Each
    result is written atomically as soon as it is ready, with the input's bit
    depth and alpha, and one JSON line per input is appended (and flushed) to
    the log, so a killed run keeps what finished. A rerun skips every input whose
    output exists (no restorer call) and retries the failed ones (they have none).
    Each output's settings (model, task, sigma, kernel, scale, mask, tile,
    precision, seed, value range, model options) are logged with it: an existing
    output that the log says was made with other settings is refused before any
    work (``overwrite=True`` redoes it) rather than silently kept. Temp files that
    killed runs left beside the outputs are removed (``report.removed``).

    Consecutive inputs of one size that run with the same operator (a given
    sigma, kernel, scale or mask file) go through ``Pipeline.run_batch``: the
    tiles of up to ``batch_size`` images share restorer calls of up to
    ``batch_size`` tiles, with the same pixels as one by one. Restorers that
    prepare each image on its own (LIDIA centres on the image mean; adaptation)
    and images with an estimated sigma still run one by one, their tiles batched.

    Args:
        inputs: a glob (``"photos/**/*.png"``, ``**`` recursive), a folder (its images;
            ``recursive``: its sub-folders' too), one image path, a list of paths, or an iterable of
            images: numpy H x W [x C] (uint8, uint16 or float in [0, 1]; a 2nd/4th
            channel is alpha) or torch C x H x W / 1 x C x H x W floats in [0, 1].
        task: "denoise", "deblur", "sr" or "inpaint" (``restore.tasks``).
        model: a registered restorer (``restore.available()``) that does ``task``, or a
            restorer object (built with its options, or wrapped, e.g. by a deep-OT tuner).
        out_dir: where results go: a file keeps its name (``ext`` and ``suffix`` change it),
            a glob's sub-folders are kept (a folder's with ``recursive``); arrays become ``image_00000.png``, ... (16-bit for
            uint16 arrays). A glob takes no file inside ``out_dir`` (an earlier run's
            outputs), and an output that would be an input is refused.
        output: instead of ``out_dir``, the one output file of one input file (no log
            unless ``log`` names one).
        sigma: noise level in the image's units, [0, 1] (25/255 for 25 in 0-255); for
            denoise, estimated per image (``estimate_image_sigma``) when None.
        kernel: deblur kernel spec (``gaussian:STD``, ``motion:LENGTH,ANGLE``, ``FILE.npy``).
        scale: sr factor (2, 3 or 4; default 4).
        psf_mtf: deblur / sr with a satellite sensor's Gaussian PSF of this MTF at Nyquist.
        sigma_poisson: signal-dependent noise: its std at full scale, [0, 1] units.
        mask: inpaint mask: an image file (white = observed) or ``random:FRACTION``,
            drawn per image from ``seed`` and the output's name (the same on a rerun).
        device: "auto" (the default: CUDA, then Apple MPS, then the CPU; ``report.device`` says
            which), "cpu", "cuda", "cuda:1", "mps"; one absent here is refused before any work.
            A restorer object runs on its own device: another one is refused, never moved.
        batch_size: images per group and tiles per restorer call.
        tile: tile side in input pixels (0: whole images).
        overlap: pixels neighbouring tiles share, blended (default: the pipeline's).
        precision: "fp32", "fp16" or "bf16".
        seed: seeds stochastic restorers and random masks.
        overwrite: restore inputs whose output exists instead of skipping them.
        log: the JSON-lines log (default ``out_dir / "restore-log.jsonl"``), appended to;
            False: none.
        progress: show a progress bar over the inputs.
        value_range: the stored value meaning full scale in the input files (e.g. 4095 for
            12-bit data in 16 bits, 255 for float TIFFs in 0-255); outputs are written back
            in the same units. Default: the type's maximum, 1.0 for floats.
        max_pixels: refuse input files with more pixels than this, from their header
            before decoding (None: no limit).
        bit_depth: 8, 16 or 32 (float TIFF) for the outputs; default each input's.
        std_map: where the per-pixel posterior std goes (models that give one): a file
            for one input, a folder (``<stem>_std.tif``) for many.
        save_samples: write the first K posterior samples beside each output.
        scheduler: Dask scale-out of streamed rasters: "local" or "tcp://HOST:PORT".
        workers: LocalCluster workers (default: the CPU count).
        ext: the outputs' format: "keep" (each input's), "png", "tif", "jpg" or "webp".
        suffix: added to every output's stem (``a.png`` -> ``a_clean.png``); no path separator.
        quality: JPEG / WebP quality, 1-100 (default 95); lossless formats ignore it.
        recursive: a folder's sub-folders too, their tree kept under ``out_dir``.
        strip_metadata: write no EXIF, ICC profile or XMP (by default a photo's are copied to
            its output, EXIF orientation reset to 1: the reader turns the pixels upright).
        on_record: called with each input's record as soon as it is written.
        **model_options: the restorer's declared options (e.g. ``samples=50`` for vble;
            ``restore models NAME`` lists them); refused with a restorer object.

    Returns:
        A ``BatchReport``: the records and the done / skipped / failed counts.

    Raises:
        RestoreError: a bad option or inputs that cannot be planned (nothing matches,
            two inputs sharing an output, an output over an input), before any work.
    """
    started = time()
    device = _device(model, device)
    opts = BatchOptions(task, sigma, kernel, scale, None if mask is None else os.fspath(mask), psf_mtf, sigma_poisson,
                        device, batch_size, tile, overlap, precision, seed, overwrite, value_range, max_pixels,
                        bit_depth, None if std_map is None else Path(std_map), save_samples, scheduler, workers,
                        progress, ext=ext, suffix=suffix, quality=quality, recursive=recursive,
                        strip_metadata=strip_metadata)
    task_row(task)
    check_options(opts)
    name, options = _model(model, task, model_options)
    if (out_dir is None) == (output is None):
        raise RestoreError("give out_dir (a folder for the outputs) or output (one output file), not both or neither")
    journal_path = log_path(None if out_dir is None else Path(out_dir), log)
    if output is not None:
        if ext != "keep" or suffix:
            raise RestoreError("ext and suffix name the outputs in out_dir: output= names the file itself")
        sources, count = iter([single_source(inputs, Path(output))]), 1
    else:
        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise RestoreError(f"out_dir {out_dir} is a file; expected a folder")
        sources, count = plan_sources(inputs, Path(out_dir), Naming(ext, suffix, recursive))
    settings = settings_record(opts, name, options)
    earlier = earlier_settings(journal_path)
    if count is not None:
        sources = list(sources)
        check_outputs_possible(opts, [s.output for s in sources], _outputs_of(model, name), name)
        refuse_changed(sources, settings, earlier, opts.overwrite)
    restorer = model if isinstance(model, Restorer) else load(name, device=device, progress=progress, **options)
    check_tile(opts, name, int(restorer.halo or 0))
    report = BatchReport(log=journal_path, device=device)
    many = count != 1
    journal = JobLog(journal_path, report) if journal_path is not None else ReportOnly(report)
    with journal, tqdm(total=count, disable=not progress or not many, unit="img", desc=task) as bar:
        worker = BatchWorker(opts, name, restorer, journal, bar, settings, earlier, started, many, on_record)
        for source in sources:
            worker.add(source)
        worker.flush()
    report.removed += worker.removed
    return report


def _model(model: str | Restorer, task: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The model's name and its options, checked against its declaration (no restorer is built yet)."""
    if isinstance(model, Restorer):
        if options:
            raise RestoreError(f"model options ({', '.join(options)}) go to restore.load, not with a restorer object")
        declared = getattr(model, "options", None)
        return model.name, as_dict(declared) if declared is not None else {}
    cls = registered(model)
    if task not in cls.tasks:
        raise RestoreError(f"model '{model}' does not support {task}; models for {task}: "
                           f"{', '.join(names_for_task(task)) or 'none'}")
    build_options(cls.Options, options, model)  # every option checked before any work
    return model, dict(options)


def _device(model: str | Restorer, device: str | None) -> str:
    """The device the job runs on: "auto" resolved (CUDA, MPS, CPU); a restorer object's own, never moved."""
    if not isinstance(model, Restorer):
        return str(check_device(AUTO if device is None else device))
    if device is not None and device != AUTO and check_device(device) != model.device:
        raise RestoreError(f"the restorer given is on {model.device}, not {device}: pass device='{model.device}' "
                           f"or move it first (restorer.to('{device}'))")
    return str(model.device)


def _outputs_of(model: str | Restorer, name: str) -> tuple[str, ...]:
    cls = type(model) if isinstance(model, Restorer) else registered(name)
    return tuple(getattr(cls, "outputs", ("image",)))
