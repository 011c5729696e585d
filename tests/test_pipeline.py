"""The tiling pipeline: grid, blending, batching, SR scaling, positional noise, precision and OOM fallbacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import restore
from restore.errors import RestoreError
from restore.noise_field import GeneratorNoise, PositionalNoise, positional_normal
from restore.operators import Denoise, Downsample, Inpaint, random_mask
from restore.bands import band_slices
from restore.merging import MemoryMerger, ramp
from restore.pipeline import Pipeline
from restore.restorers.base import Restoration, Restorer
from restore.tiling import TileGrid

from conftest import psnr


class BoxBlur(Restorer):
    """A deterministic local filter (5 x 5 mean, replicate border): tiles must reproduce it exactly."""

    name = "box"
    tasks = ("denoise", "inpaint")
    halo = 2

    def __init__(self):
        self.calls: list[int] = []

    def _restore(self, y, operator, *, generator):
        self.calls.append(y.shape[0])
        return Restoration(image=F.avg_pool2d(F.pad(y, [2] * 4, mode="replicate"), 5, stride=1))


class NoisyBlur(Restorer):
    """A stochastic local restorer: blur of (y + noise), the noise drawn from the source it is given."""

    name = "noisy"
    tasks = ("denoise",)
    halo = 2
    stochastic = True

    def _restore(self, y, operator, *, generator, noise):
        z = y + 0.2 * noise.randn(y.shape)
        return Restoration(image=F.avg_pool2d(F.pad(z, [2] * 4, mode="replicate"), 5, stride=1))


class PerTileNoise(NoisyBlur):
    """The mistake positional noise prevents: a fresh stream per tile."""

    def _restore(self, y, operator, *, generator, noise):
        self.tiles = getattr(self, "tiles", 0) + 1
        stream = GeneratorNoise(torch.Generator().manual_seed(self.tiles))
        return super()._restore(y, operator, generator=generator, noise=stream)


def cuda_oom() -> Exception:
    return torch.cuda.OutOfMemoryError("simulated")


class OomAbove(BoxBlur):
    """Runs out of memory (``error``, CUDA's by default) for inputs larger than ``limit`` pixels a side."""

    def __init__(self, limit, error=cuda_oom):
        super().__init__()
        self.limit, self.error = limit, error
        self.sides: list[int] = []

    def _restore(self, y, operator, *, generator):
        self.sides.append(max(y.shape[-2:]))
        if max(y.shape[-2:]) > self.limit:
            raise self.error()
        return super()._restore(y, operator, generator=generator)


class StaysPut(BoxBlur):
    """Records every move, to show the pipeline never moves a restorer it was given."""

    def __init__(self):
        super().__init__()
        self.moves: list[torch.device] = []

    def to(self, device):
        self.moves.append(torch.device(device))
        return super().to(device)


class NanUnderAutocast(BoxBlur):
    """Gives NaN when run under reduced-precision autocast, like an fp16 overflow."""

    def _restore(self, y, operator, *, generator):
        out = super()._restore(y, operator, generator=generator)
        if torch.is_autocast_enabled("cpu"):
            out.image = out.image * float("nan")
        return out


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.camera()[:150, :170].astype(np.float32) / 255)[None, None]


# ---- grid and blending ----------------------------------------------------------
@pytest.mark.parametrize("size,tile,overlap,halo", [(150, 48, 8, 5), (64, 64, 0, 3), (100, 30, 10, 40), (17, 8, 2, 0)])
def test_grid_covers_image_with_equal_windows_and_full_halo(size, tile, overlap, halo):
    grid = TileGrid(size, size + 7, tile=tile, overlap=overlap, halo=halo)
    covered = torch.zeros(size, size + 7)
    windows = set()
    for t in grid:
        r0, r1, c0, c1 = t.core
        covered[r0:r1, c0:c1] = 1
        q0, q1, p0, p1 = t.read
        windows.add((q1 - q0, p1 - p0))
        # Context on each side: the halo, or all there is up to the image edge.
        assert r0 - q0 >= min(halo, r0) and q1 - r1 >= min(halo, size - r1)
        assert c0 - p0 >= min(halo, c0) and p1 - c1 >= min(halo, size + 7 - c1)
    assert covered.all()
    assert len(windows) == 1


def test_grid_rounds_window_to_the_net_multiple():
    grid = TileGrid(500, 500, tile=100, halo=7, multiple=16)
    assert all((t.read[1] - t.read[0]) % 16 == 0 for t in grid)


def test_ramp_is_positive_and_complementary():
    w = ramp(40, 16, 16)
    assert (w > 0).all() and w[16:24].eq(1).all()
    left, right = ramp(32, 0, 16), ramp(32, 16, 0)
    # Two cores overlapping by exactly the ramp length blend to a partition of unity.
    assert torch.allclose(left[16:] + right[:16], torch.ones(16), atol=1e-6)


def test_merger_refuses_uncovered_output():
    m = MemoryMerger(1, 10, 10, overlap=2)
    m.add((0, 5, 0, 10), torch.ones(1, 5, 10))
    with pytest.raises(RuntimeError):
        m.finalize()


def test_bad_tiling_options_are_refused():
    with pytest.raises(RestoreError):
        Pipeline(BoxBlur(), Denoise(0.1), tile=32, overlap=32)
    with pytest.raises(RestoreError):
        Pipeline(BoxBlur(), Denoise(0.1), batch_size=0)
    with pytest.raises(RestoreError):
        Pipeline(BoxBlur(), Denoise(0.1), precision="fp8")


# ---- equality with one untiled call ------------------------------------------------
@pytest.mark.parametrize("tile,overlap,batch", [(48, 8, 1), (48, 16, 5), (64, 0, 3), (0, 0, 1)])
def test_tiled_local_filter_equals_untiled_call(image, tile, overlap, batch):
    op = Denoise(sigma=0.1)
    whole = BoxBlur().restore(image, op).image
    box = BoxBlur()
    tiled = Pipeline(box, op, tile=tile, overlap=overlap, batch_size=batch)(image)
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert max(box.calls) <= batch  # tiles really were batched, never more than asked


def test_super_resolution_output_is_scaled_and_equals_untiled(image):
    op = Downsample(2)
    lr = op(image[..., :148, :168])
    whole = restore.load("bicubic").restore(lr, op).image
    tiled = Pipeline("bicubic", op, tile=24, overlap=6, batch_size=4)(lr)
    assert tiled.shape[-2:] == (148, 168)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_inpainting_masks_are_cut_per_tile(image):
    mask = random_mask(150, 170, 0.3, torch.Generator().manual_seed(1))
    op = Inpaint(mask)
    tiled_op = op.for_tiles([(0, 40, 10, 50), (100, 140, 120, 160)])
    assert tiled_op.mask.shape == (2, 1, 40, 40)
    assert torch.equal(tiled_op.mask[1, 0], mask[0, 0, 100:140, 120:160])
    whole = BoxBlur().restore(op(image), op).image
    assert torch.allclose(Pipeline(BoxBlur(), op, tile=40, overlap=8, batch_size=3)(op(image)), whole, atol=1e-6)


def test_inputs_of_every_kind_give_the_same_pixels(image, tmp_path):
    import dask.array as da

    from restore.io import write_image

    pipe = Pipeline(BoxBlur(), Denoise(0.1), tile=40, overlap=8)
    ref = pipe(image)[0, 0]
    assert torch.allclose(pipe(image[0])[0], ref, atol=1e-6)  # C x H x W
    assert np.allclose(pipe(image[0, 0].numpy()), ref.numpy(), atol=1e-6)
    u8 = (image[0, 0].numpy() * 255).round().astype(np.uint8)
    assert np.allclose(pipe(u8), pipe(torch.from_numpy(u8 / np.float32(255))[None, None])[0, 0].numpy(), atol=1e-6)
    write_image(tmp_path / "x.png", image, bit_depth=16)
    assert torch.allclose(pipe(tmp_path / "x.png")[0, 0], ref, atol=1e-4)
    lazy = pipe(da.from_array(image[0].numpy(), chunks=(1, 64, 64)))
    assert np.allclose(lazy.compute(scheduler="sync")[0], ref.numpy(), atol=1e-6)


def test_dask_array_super_resolution_trims_chunks_at_output_scale(image):
    import dask.array as da

    op = Downsample(2)
    lr = op(image[..., :148, :168])[0]
    pipe = Pipeline("bicubic", op, tile=20, overlap=4)
    lazy = pipe(da.from_array(lr.numpy(), chunks=(1, 30, 40)))
    assert lazy.shape == (1, 148, 168)
    assert np.allclose(lazy.compute(scheduler="sync"), pipe(lr).numpy(), atol=1e-5)


def test_bands_go_one_by_one_through_a_gray_restorer():
    assert band_slices(4, (1, 3)) == [slice(0, 3), slice(3, 4)]
    assert band_slices(8, (1, 3)) == [slice(0, 3), slice(3, 6), slice(6, 7), slice(7, 8)]
    assert band_slices(2, (1,)) == [slice(0, 1), slice(1, 2)]
    assert band_slices(3, (1, 3)) == [slice(0, 3)]
    with pytest.raises(RestoreError):
        band_slices(4, (3,))
    y = torch.rand(1, 4, 40, 40)
    box = BoxBlur()
    box.channels = (1,)
    out = Pipeline(box, Denoise(0.1), tile=16, overlap=4)(y)
    assert torch.allclose(out, BoxBlur().restore(y, Denoise(0.1)).image, atol=1e-6)


# ---- stochastic restorers: positional noise ------------------------------------
def test_positional_noise_depends_on_position_only():
    a = PositionalNoise(7, [(10, 20)]).randn((1, 2, 30, 30))
    b = PositionalNoise(7, [(25, 31)]).randn((1, 2, 30, 30))
    assert torch.equal(a[..., 15:, 11:], b[..., :15, :19])
    assert not torch.equal(a, PositionalNoise(8, [(10, 20)]).randn((1, 2, 30, 30)))
    source = PositionalNoise(7, [(0, 0)])
    first, second = source.randn((1, 1, 8, 8)), source.randn((1, 1, 8, 8))
    assert not torch.equal(first, second)  # successive draws are fresh


def test_positional_noise_is_standard_normal():
    z = positional_normal(3, (1, 1, 400, 400), torch.arange(400), torch.arange(400))
    assert abs(z.mean().item()) < 0.01 and abs(z.std().item() - 1) < 0.01
    # Neighbours are uncorrelated.
    assert abs((z[..., 1:] * z[..., :-1]).mean().item()) < 0.01


def _seam_columns(width: int, tile: int, overlap: int) -> torch.Tensor:
    """Indices k of column differences out[k+1] - out[k] that touch a blended band between cores."""
    cores = sorted({t.core[2:] for t in TileGrid(1, width, tile=tile, overlap=overlap)})
    cols = set()
    for (_, prev_end), (start, _) in zip(cores, cores[1:]):
        cols.update(range(start - 1, prev_end))
    return torch.tensor(sorted(cols))


def _column_step(out: torch.Tensor) -> torch.Tensor:
    """Mean |out[:, k+1] - out[:, k]| for every column k."""
    return (out[..., :, 1:] - out[..., :, :-1]).abs().mean(dim=(0, 1, 2))


def _border_excess(out: torch.Tensor, tile: int, overlap: int) -> float:
    """Mean column step along tile borders over the mean elsewhere (1: no grid visible)."""
    d = _column_step(out)
    seams = _seam_columns(out.shape[-1], tile, overlap)
    rest = torch.ones_like(d, dtype=torch.bool)
    rest[seams] = False
    return float(d[seams].mean() / d[rest].mean())


def test_stochastic_restorer_shows_no_seams(image):
    op = Denoise(0.1)
    flat = torch.full((1, 1, 512, 256), 0.5)
    tiled = Pipeline(NoisyBlur(), op, tile=64, overlap=16, batch_size=4, seed=3)(flat)
    # Same noise at the same place: the tiled output equals one call with that noise.
    whole = NoisyBlur().restore(flat, op, noise=PositionalNoise(3, [(0, 0)])).image
    assert torch.allclose(tiled, whole, atol=1e-6)
    assert abs(_border_excess(tiled, 64, 16) - 1) < 0.04
    # The check can fail: per-tile streams leave a visible grid (a jump where cores
    # abut, a band of averaged, weaker texture where they are blended).
    for overlap in (0, 16):
        seamy = Pipeline(PerTileNoise(), op, tile=64, overlap=overlap, batch_size=1)(flat)
        assert abs(_border_excess(seamy, 64, overlap) - 1) > 0.07


# ---- precision and device fallbacks ------------------------------------------
def test_reduced_precision_nan_falls_back_to_fp32(image):
    messages = []
    out = Pipeline(NanUnderAutocast(), Denoise(0.1), tile=64, overlap=8, precision="bf16", log=messages.append)(image)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, BoxBlur().restore(image, Denoise(0.1)).image, atol=1e-6)
    assert len(messages) == 1 and "fp32" in messages[0]


@pytest.mark.parametrize("error", [lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   lambda: RuntimeError("MPS backend out of memory"),
                                   lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_out_of_memory_halves_the_tile_for_that_call_only(image, error):
    messages = []
    pipe = Pipeline(OomAbove(60, error), Denoise(0.1), tile=128, overlap=16, log=messages.append)
    settings = pipe.settings
    expected = BoxBlur().restore(image, Denoise(0.1)).image
    assert torch.allclose(pipe(image), expected, atol=1e-6)
    assert messages == ["out of memory on cpu with tile 128: retrying with tile 64",
                        "out of memory on cpu with tile 64: retrying with tile 32"]
    assert pipe.settings is settings and (pipe.tile, pipe.overlap) == (128, 16)
    # The next call starts again from the configured tile (its first attempt is a 128 + 2 x 2 window).
    pipe.restorer.sides.clear()
    assert torch.allclose(pipe(image), expected, atol=1e-6)
    assert pipe.restorer.sides[0] == 132 and len(messages) == 4


def test_a_copy_sent_to_dask_after_an_out_of_memory_has_the_configured_settings(image):
    import pickle

    import dask.array as da

    messages = []
    pipe = Pipeline(OomAbove(60), Denoise(0.1), tile=128, overlap=16, log=messages.append)
    pipe(image)
    copy = pickle.loads(pickle.dumps(pipe))  # what a worker unpickles
    assert copy.settings == pipe.settings and copy.tile == 128
    lazy = pipe(da.from_array(image[0].numpy(), chunks=(1, 150, 170)))
    out = lazy.compute(scheduler="sync")
    assert np.allclose(out, BoxBlur().restore(image, Denoise(0.1)).image[0].numpy(), atol=1e-6)
    assert messages[2:] == messages[:2]  # the Dask chunk started at tile 128 too


def test_other_runtime_errors_are_not_taken_for_out_of_memory(image):
    pipe = Pipeline(OomAbove(60, lambda: RuntimeError("shape mismatch")), Denoise(0.1), tile=128, log=lambda m: None)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        pipe(image)


def test_settings_cannot_be_changed_after_construction():
    import dataclasses

    pipe = Pipeline(BoxBlur(), Denoise(0.1), tile=64, overlap=8)
    for name, value in [("tile", 32), ("overlap", 0), ("device", "cuda"), ("restorer", BoxBlur()), ("other", 1)]:
        with pytest.raises(AttributeError, match="fixed at construction"):
            setattr(pipe, name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pipe.settings.tile = 32
    smaller = pipe.replace(tile=32)
    assert (smaller.tile, smaller.overlap, pipe.tile) == (32, 8, 64) and smaller.restorer is pipe.restorer


def test_the_restorer_given_is_never_moved():
    box = StaysPut()
    pipe = Pipeline(box, Denoise(0.1), tile=32)
    assert pipe.device == torch.device("cpu") and Pipeline(box, Denoise(0.1), device="cpu").device.type == "cpu"
    with pytest.raises(RestoreError, match="restorer is on cpu, not on the requested device meta"):
        Pipeline(box, Denoise(0.1), device="meta")
    pipe(torch.rand(1, 1, 40, 40))
    assert box.moves == [] and box.device == torch.device("cpu")
    # A restorer the pipeline loads by name is its own, put on the device asked for.
    assert Pipeline("bicubic", Downsample(2), device="cpu").restorer.device == torch.device("cpu")


def test_out_of_memory_at_the_smallest_tile_is_an_error(image):
    with pytest.raises(RestoreError, match="out of memory"):
        Pipeline(OomAbove(8), Denoise(0.1), tile=64, overlap=8, log=lambda m: None)(image)


# ---- real restorers ------------------------------------------------------------
def test_nlm_seams_bar_on_512(camera):
    """The issue's bar: tile 128 / overlap 32 vs one call on 512 x 512, < 0.05 dB apart."""
    from skimage import data

    clean = torch.from_numpy(data.camera().astype(np.float32) / 255)[None, None]
    op = Denoise(sigma=25 / 255)
    y = op.measure(clean, torch.Generator().manual_seed(0))
    whole = restore.load("nlm").restore(y, op).image
    tiled = Pipeline("nlm", op, tile=128, overlap=32, batch_size=4)(y)
    assert abs(psnr(tiled, clean) - psnr(whole, clean)) < 0.05
    seams = _seam_columns(512, 128, 32)
    assert _column_step(tiled)[seams].mean() <= _column_step(whole)[seams].mean() * 1.001


def test_lidia_prepared_once_matches_whole_image_on_a_tile():
    """LIDIA centres every tile on the image mean, so a tile with a full halo equals the whole call."""
    from skimage import data

    clean = torch.from_numpy(data.camera()[100:300, 150:350].astype(np.float32) / 255)[None, None]
    op = Denoise(sigma=25 / 255)
    y = op.measure(clean, torch.Generator().manual_seed(0))
    lidia = restore.load("lidia")
    whole = lidia.restore(y, op).image
    pipe = Pipeline(lidia, op, tile=60)
    (group,) = pipe.prepared(y)
    window = y[..., 0:172, 0:172]  # core 0:60 x 0:60 with a 56-px halo below and right (and more)
    tile_out = group.restorer.restore(window, group.operator).image
    assert torch.allclose(tile_out[..., :60, :60], whole[..., :60, :60], atol=1e-4)


def test_dask_chunks_draw_the_noise_of_their_place_in_the_image():
    import dask.array as da

    flat = torch.full((1, 96, 120), 0.5)
    pipe = Pipeline(NoisyBlur(), Denoise(0.1), tile=32, overlap=8, seed=5)
    in_memory = pipe(flat)
    lazy = pipe(da.from_array(flat.numpy(), chunks=(1, 48, 40))).compute(scheduler="sync")
    assert np.abs(lazy - in_memory.numpy()).max() < 1e-5
