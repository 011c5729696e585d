"""`restore bench` runs restorers the way users do: through Pipeline, on the whole image, in the asked precision."""
from __future__ import annotations

import json

import numpy as np
import torch

from restore.bench.cases import settings_for
from restore.bench.methods import split_specs
from restore.bench.runner import BenchJob, run_bench
from restore.io import write_image
from restore.pipeline import Pipeline


def test_bench_goes_through_the_pipeline_whole_image_in_its_precision(tmp_path, monkeypatch):
    from skimage import data

    folder = tmp_path / "tiny"
    img = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    for i in range(2):
        write_image(folder / f"im{i}.png", img[..., 100 * i : 100 * i + 48, 200:248], bit_depth=8)
    seen = []
    real_run = Pipeline.run

    def spied(self, y):
        seen.append((self.restorer.name, self.tile, self.precision, self.seed, tuple(y.shape)))
        return real_run(self, y)

    monkeypatch.setattr(Pipeline, "run", spied)
    settings = settings_for("denoise", sigmas=[25.0], scales=[], kernel=None, missing=[])
    out = tmp_path / "results"
    run_bench(BenchJob(task="denoise", datasets=[folder], settings=settings, models=split_specs("nlm,nlm:precision=bf16"),
                       out_dir=out, progress=False, say=lambda m: None))
    # Per spec: one warm-up call, then the two images, every one a whole-image call.
    assert sorted((name, tile, precision) for name, tile, precision, _, _ in seen) == [("nlm", 0, "bf16")] * 3 + [("nlm", 0, "fp32")] * 3
    assert all(shape == (1, 3, 48, 48) and seed == 0 for *_, seed, shape in seen)
    records = [json.loads(line) for line in (out / "denoise_tiny.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["psnr"] > r["input_psnr"] + 3 for r in records)
