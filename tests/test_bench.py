"""`restore bench`: settings and specs, seeded degradations, scoring, resumable records, summaries, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from restore.bench import methods as bench_methods
from restore.bench.cases import Setting, degrade, seed_for, settings_for
from restore.bench.methods import parse_spec, split_specs
from restore.bench.runner import BenchJob, run_bench
from restore.cli import app, spread_values
from restore.errors import RestoreError
from restore.io import read_image, write_image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    """Three 64 x 64 RGB crops of scikit-image's astronaut as PNG files."""
    from skimage import data

    folder = tmp_path / "tiny"
    img = torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None]
    for i, (top, left) in enumerate([(30, 150), (200, 200), (300, 60)]):
        write_image(folder / f"im{i}.png", img[..., top : top + 64, left : left + 64], bit_depth=8)
    return folder


def job(dataset: Path, out: Path, task: str = "denoise", models: str = "nlm", **kw) -> BenchJob:
    settings = kw.pop("settings", None) or settings_for(task, sigmas=kw.pop("sigmas", [25.0] if task == "denoise" else []),
                                                         scales=kw.pop("scales", []), kernel=None, missing=[])
    return BenchJob(task=task, datasets=[dataset], settings=settings, models=split_specs(models), out_dir=out,
                    progress=False, say=lambda m: None, **kw)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_specs_parse_options_and_split_on_commas():
    assert split_specs("lidia,rddm:steps=5,seed=1, bicubic") == ["lidia", "rddm:steps=5,seed=1", "bicubic"]
    # Values stay text: the restorer's declaration types them (restore.options), as it does -O KEY=VALUE.
    assert parse_spec("rddm:steps=5,precision=bf16,lam=0.5") == ("rddm", {"steps": "5", "precision": "bf16", "lam": "0.5"})
    with pytest.raises(RestoreError, match="KEY=VALUE"):
        parse_spec("rddm:steps")
    with pytest.raises(RestoreError, match="empty"):
        split_specs(" , ")


def test_several_values_after_one_flag_are_spread():
    argv = ["bench", "--task", "denoise", "--sigma", "15", "25", "50", "--models", "nlm"]
    assert spread_values(argv) == ["bench", "--task", "denoise", "--sigma", "15", "--sigma", "25", "--sigma", "50",
                                   "--models", "nlm"]
    assert spread_values(["denoise", "a.png", "--sigma", "25"]) == ["denoise", "a.png", "--sigma", "25"]


def test_settings_are_checked():
    assert [s.label for s in settings_for("denoise", sigmas=[15, 25], scales=[], kernel=None, missing=[])] == [
        "sigma 15", "sigma 25"]
    assert settings_for("sr", sigmas=[], scales=[], kernel=None, missing=[]) == [Setting("sr", scale=4)]
    assert settings_for("inpaint", sigmas=[], scales=[], kernel=None, missing=[])[0].label == "50% missing"
    for task, kw, message in [("denoise", {}, "needs --sigma"), ("sr", {"sigmas": [5]}, "noise-free"),
                              ("sr", {"scales": [5]}, "2, 3 or 4"), ("inpaint", {"missing": [1.5]}, r"\(0, 1\)"),
                              ("colorize", {}, "--task"), ("deblur", {"kernel": "box:3"}, "kernel")]:
        args = {"sigmas": [], "scales": [], "kernel": None, "missing": []} | kw
        with pytest.raises(RestoreError, match=message):
            settings_for(task, **args)


def test_degradations_are_seeded_per_image_and_match_the_denoise_script(astronaut):
    s25 = Setting("denoise", sigma=25)
    a, b = degrade(s25, astronaut, 0, 3), degrade(s25, astronaut, 0, 3)
    assert torch.equal(a.degraded, b.degraded)
    assert not torch.equal(a.degraded, degrade(s25, astronaut, 0, 4).degraded)
    # benchmarks/denoise.py's rule: sha256("seed/sigma/index"), so the committed tables are reproduced.
    n = torch.randn(astronaut.shape, generator=torch.Generator().manual_seed(seed_for(0, "25", 3)))
    torch.testing.assert_close(a.degraded, astronaut + 25 / 255 * n)
    sr = degrade(Setting("sr", scale=4), astronaut[..., :78, :95], 0, 0)
    assert sr.clean.shape[-2:] == (76, 92) and sr.degraded.shape[-2:] == (19, 23)
    assert torch.equal(sr.degraded, (sr.degraded * 255).round() / 255)  # 8-bit, as a saved image
    hole = degrade(Setting("inpaint", missing=0.5), astronaut, 0, 0)
    assert 0.4 < float((hole.degraded == 0).all(dim=1).float().mean()) < 0.6


def test_bench_writes_records_summary_and_resumes_without_work(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "results"
    written = run_bench(job(tiny_dataset, out, models="nlm", sigmas=[15.0, 25.0]))
    records = lines(out / "denoise_tiny.jsonl")
    assert len(records) == 6 and {r["setting"] for r in records} == {"sigma 15", "sigma 25"}
    assert all(r["psnr"] > r["input_psnr"] + 3 for r in records)
    md = written[0].read_text()
    assert written[0] == out / "denoise_tiny.md" and "| nlm | 3 |" in md and "## Protocol" in md
    summary = json.loads((out / "denoise_tiny.json").read_text())["summary"]
    assert summary[0]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in records if r["setting"] == "sigma 15"]))

    calls = []
    real = bench_methods._restorer_runner
    monkeypatch.setattr(bench_methods, "_restorer_runner", lambda *a: lambda *b: calls.append(1) or real(*a)(*b))
    run_bench(job(tiny_dataset, out, models="nlm", sigmas=[15.0, 25.0]))
    assert calls == [] and len(lines(out / "denoise_tiny.jsonl")) == 6  # nothing redone
    run_bench(job(tiny_dataset, out, models="nlm", sigmas=[25.0, 50.0]))
    assert len(calls) == 3 + 1  # only sigma 50 is new (plus one warm-up call)


def test_a_killed_run_leaves_a_partial_line_that_is_ignored(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, models="nlm", limit=2))
    jsonl = out / "denoise_tiny.jsonl"
    jsonl.write_text(jsonl.read_text()[:-40])  # the second record cut short
    run_bench(job(tiny_dataset, out, models="nlm"))
    records = [r for r in (json.loads(x) for x in jsonl.read_text().splitlines() if x.endswith("}"))]
    assert sorted(r["image"] for r in records) == ["im0.png", "im1.png", "im2.png"]


def test_sr_scores_the_y_channel_with_a_border_crop(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, task="sr", models="bicubic", scales=[2, 4]))
    records = lines(out / "sr_tiny.jsonl")
    assert {r["setting"] for r in records} == {"x2", "x4"}
    x2 = np.mean([r["psnr"] for r in records if r["setting"] == "x2"])
    x4 = np.mean([r["psnr"] for r in records if r["setting"] == "x4"])
    assert x2 > x4 + 2 and all(r["psnr_rgb"] is not None and r["input_psnr"] is None for r in records)
    assert "PSNR RGB" in (out / "sr_tiny.md").read_text()


def test_the_overview_gathers_every_task_and_setting_of_the_folder(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, models="nlm", sigmas=[15.0, 25.0]))
    (out / "notes.json").write_text("[1, 2]")  # another file: left out, not an error
    written = run_bench(job(tiny_dataset, out, task="sr", models="bicubic", scales=[2]))
    assert written[-1] == out / "OVERVIEW.md"
    page = written[-1].read_text()
    assert "## Denoising" in page and "## Super-resolution" in page
    assert "| method | [tiny](denoise_tiny.md) sigma 15 | [tiny](denoise_tiny.md) sigma 25 |" in page
    summary = json.loads((out / "sr_tiny.json").read_text())["summary"]
    assert f"| bicubic | {summary[0]['psnr']:.2f} |" in page


def test_a_setting_the_model_refuses_is_not_run_and_the_summary_says_why(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, task="sr", models="bicubic,rddm", scales=[2]))
    assert {r["method"] for r in lines(out / "sr_tiny.jsonl")} == {"bicubic"}  # no error record per image
    md = (out / "sr_tiny.md").read_text()
    assert "## Not run" in md and "- rddm at x2: model 'rddm' has no x2 weights" in md and "Failed runs" not in md


def test_timings_from_another_machine_are_flagged(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, models="nlm"))
    jsonl, md = out / "denoise_tiny.jsonl", out / "denoise_tiny.md"
    records = lines(jsonl)
    assert len({r["machine"] for r in records}) == 1 and "more than one machine" not in md.read_text()
    records[0]["machine"] = "Other CPU, 64 cores, 64 torch threads"  # as if the run had been resumed elsewhere
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    run_bench(job(tiny_dataset, out, models="nlm"))
    assert "Timings from more than one machine" in md.read_text() and "Other CPU" in md.read_text()


def test_a_failing_image_is_recorded_and_the_rest_goes_on(tiny_dataset, tmp_path):
    (tiny_dataset / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "results"
    run_bench(job(tiny_dataset, out, models="nlm"))
    assert sorted(r["image"] for r in lines(out / "denoise_tiny.jsonl")) == ["im0.png", "im1.png", "im2.png"]


def test_bad_options_fail_before_any_work(tiny_dataset, tmp_path):
    out = tmp_path / "results"
    for models, message in [("nosuch", "unknown model"), ("bm3d", "denoiser"), ("lidia", "does not do sr"),
                            ("bicubic:precision=fp64", "precision")]:
        with pytest.raises(RestoreError, match=message):
            run_bench(job(tiny_dataset, out, task="sr", models=models))
    with pytest.raises(RestoreError, match="not found"):
        run_bench(job(tmp_path / "nowhere", out))
    assert not out.exists()


def test_cli_bench_one_line_errors_and_a_summary(tiny_dataset, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["bench", "--task", "sr", "--dataset", str(tiny_dataset), "--scale", "4",
                             "--models", "bicubic", "-o", str(tmp_path / "r"), "-q"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "r" / "sr_tiny.md").is_file()
    bad = runner.invoke(app, ["bench", "--task", "denoise", "--dataset", str(tiny_dataset), "--models", "nlm",
                              "-o", str(tmp_path / "r2")])
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "needs --sigma" in bad.output


@pytest.mark.slow
def test_bench_reproduces_the_committed_cbsd68_table_per_image(shared_data, tmp_path):
    """The first two CBSD68 images at sigma 25: NLM and LIDIA within 0.05 dB of benchmarks/results/cbsd68_color.json."""
    committed = json.loads((REPO / "benchmarks/results/cbsd68_color.json").read_text())["records"]
    reference = {(r["method"], r["image"]): r["psnr"] for r in committed if r["sigma"] == 25}
    out = tmp_path / "results"
    run_bench(job(shared_data / "CBSD68", out, models="nlm,lidia", limit=2))
    for r in lines(out / "denoise_CBSD68.jsonl"):
        assert r["psnr"] == pytest.approx(reference[(r["method"], r["image"])], abs=0.05)


def test_a_method_failing_on_one_image_is_listed_and_retried(tiny_dataset, tmp_path, monkeypatch):
    real = bench_methods._restorer_runner

    def flaky(*args):
        run = real(*args)

        def maybe_fail(y, operator, seed):
            if y.shape[-1] == 64 and float(y.mean()) == float(fail_on[0].mean()):
                raise RestoreError("simulated failure")
            return run(y, operator, seed)

        return maybe_fail

    out = tmp_path / "results"
    fail_on = [degrade(Setting("denoise", sigma=25), read_image(tiny_dataset / "im1.png").pixels, 0, 1).degraded]
    monkeypatch.setattr(bench_methods, "_restorer_runner", flaky)
    run_bench(job(tiny_dataset, out))
    md = (out / "denoise_tiny.md").read_text()
    assert "| nlm | 2 |" in md and "im1.png sigma 25 nlm: simulated failure" in md
    monkeypatch.setattr(bench_methods, "_restorer_runner", real)
    run_bench(job(tiny_dataset, out))
    assert "| nlm | 3 |" in (out / "denoise_tiny.md").read_text()
