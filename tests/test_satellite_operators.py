"""Satellite-sensor operators: the MTF-specified PSF, Decimate and their composition."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.errors import RestoreError
from restore.operators import (
    Blur,
    Compose,
    Decimate,
    GaussianNoise,
    PoissonGaussianNoise,
    mtf_psf,
    parse_kernel,
    satellite_operator,
)

FACTORS = [2, 3, 4, 5]
SIZE = 60  # divisible by every factor above


def rand(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def response(kernel: torch.Tensor, period: int) -> tuple[float, float]:
    """|DFT| of the kernel at 1 / period cycle/pixel, along columns and along rows."""
    n = 16 * period  # a grid on which that frequency is a DFT bin
    spec = torch.fft.fft2(kernel.double(), s=(n, n)).abs()
    return spec[0, n // period].item(), spec[n // period, 0].item()


def assert_one_line_error(fn, *args, match: str | None = None, **kwargs) -> None:
    with pytest.raises(RestoreError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)


def assert_adjoint(op, channels: int, size: int = SIZE) -> None:
    x = rand((2, channels, size, size), 1) - 0.5
    ax = op(x)
    y = rand(tuple(ax.shape), 2) - 0.5
    lhs, rhs = (ax * y).sum().item(), (x * op.adjoint(y)).sum().item()
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), abs(rhs))


# -- mtf_psf -----------------------------------------------------------------------
@pytest.mark.parametrize("m", [0.1, 0.15, 0.2, 0.3, 0.4, 0.5])
def test_mtf_psf_matches_mtf_at_nyquist(m: float) -> None:
    k = mtf_psf(m, dtype=torch.float64)
    along_cols, along_rows = response(k, 2)
    # Sampling the continuous-model width sqrt(-2 ln m) / pi would give about 2 m here.
    assert abs(along_cols - m) < 0.02 * m and abs(along_rows - m) < 0.02 * m
    assert abs(k.sum().item() - 1) < 1e-12 and (k >= 0).all()
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0)) and torch.equal(k, k.flip(1))
    side = k.shape[0]
    assert k.shape == (side, side) and side % 2 == 1 and side >= 3
    assert k.argmax().item() == (side * side) // 2
    # +-4 std covered: the outermost row holds almost nothing.
    assert k[0].sum().item() < 1e-3


def test_mtf_psf_blurs_a_nyquist_pattern_by_m() -> None:
    # The operator view of the same property: (-1)^col comes out scaled by m.
    pattern = ((-1.0) ** torch.arange(32, dtype=torch.float64)).expand(1, 1, 32, 32)
    for m in (0.15, 0.3):
        y = Blur(mtf_psf(m, dtype=torch.float64))(pattern)
        torch.testing.assert_close(y, m * pattern, rtol=0, atol=0.01 * m)


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("m", [0.1, 0.15, 0.3, 0.5])
def test_mtf_psf_on_a_finer_grid(factor: int, m: float) -> None:
    k = mtf_psf(m, factor=factor, dtype=torch.float64)
    along_cols, along_rows = response(k, 2 * factor)  # the sensor's Nyquist, in fine pixels
    assert abs(along_cols - m) < 0.02 * m and abs(along_rows - m) < 0.02 * m
    assert k.shape[0] > mtf_psf(m).shape[0] and abs(k.sum().item() - 1) < 1e-12


def test_mtf_psf_sharper_sensor_narrower_kernel() -> None:
    sizes = [mtf_psf(m).shape[0] for m in (0.05, 0.15, 0.5, 0.999)]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 3
    centres = [mtf_psf(m)[mtf_psf(m).shape[0] // 2].max().item() for m in (0.1, 0.3, 0.6)]
    assert centres == sorted(centres)
    assert mtf_psf(0.15, size=11).shape == (11, 11) and mtf_psf(0.15, dtype=torch.float16).dtype == torch.float16


@pytest.mark.parametrize("m", [0, 1, -0.1, 1.5, math.nan, math.inf, "0.15", None, True])
def test_mtf_psf_bad_mtf(m: object) -> None:
    assert_one_line_error(mtf_psf, m, match="mtf_nyquist")


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"size": 1}, {"size": 5.0}, {"size": 2001},
                                    {"factor": 0}, {"factor": 1.5}, {"factor": True}])
def test_mtf_psf_bad_size_or_factor(kwargs: dict) -> None:
    assert_one_line_error(mtf_psf, 0.15, **kwargs)


def test_parse_kernel_mtf() -> None:
    assert torch.equal(parse_kernel("mtf:0.15"), mtf_psf(0.15))
    assert torch.equal(parse_kernel(" MTF: 0.3 ", dtype=torch.float64), mtf_psf(0.3, dtype=torch.float64))
    with pytest.raises(RestoreError, match="mtf:"):
        parse_kernel("box:3")  # the error lists the accepted specs


@pytest.mark.parametrize("spec", ["mtf", "mtf:", "mtf:0", "mtf:1", "mtf:1.5", "mtf:-0.2", "mtf:nan",
                                  "mtf:abc", "mtf:0.1,2"])
def test_parse_kernel_bad_mtf(spec: str) -> None:
    assert_one_line_error(parse_kernel, spec)


# -- Decimate ----------------------------------------------------------------------
@pytest.mark.parametrize("factor", FACTORS)
def test_decimate_keeps_every_factor_th_pixel(factor: int) -> None:
    op = Decimate(factor)
    x = rand((2, 3, SIZE, SIZE))
    y = op(x)
    assert torch.equal(y, x[..., ::factor, ::factor])
    assert op.task == "sr" and op.scale == 1 / factor and op.halo == 0
    up = op.adjoint(y)
    assert up.shape == x.shape and torch.equal(up[..., ::factor, ::factor], y)
    up[..., ::factor, ::factor] = 0
    assert not up.any()  # zeros everywhere else


@pytest.mark.parametrize("factor", FACTORS)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_decimate_adjointness(factor: int, channels: int) -> None:
    assert_adjoint(Decimate(factor), channels)


@pytest.mark.parametrize("factor", FACTORS)
def test_decimate_pinv_is_exact(factor: int) -> None:
    op = Decimate(factor)
    y = rand((2, 4, SIZE // factor, SIZE // factor), 3)
    xp = op.pinv(y)
    assert torch.equal(op(xp), y)  # A A^+ y = y
    assert torch.equal(op.pinv(op(xp)), xp)  # A^+ A A^+ = A^+
    assert torch.equal(xp, op.adjoint(y))  # A A^T = I makes A^+ = A^T


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_decimate_shapes(channels: int) -> None:
    op = Decimate(3, sigma=0.01)
    x = rand((1, channels, 12, 18), dtype=torch.float32)
    y = op(x)
    assert y.shape == (1, channels, 4, 6) and y.dtype == torch.float32
    assert op.adjoint(y).shape == op.pinv(y).shape == x.shape
    assert op.input_shape(tuple(y.shape)) == tuple(x.shape)
    assert op.measure(x, torch.Generator().manual_seed(0)).shape == y.shape
    y[:] = 7  # forward returns a copy, not a view of x
    assert x.max() <= 1


@pytest.mark.parametrize("factor", [1, 0, -2, 2.5, True, "2", None])
def test_decimate_bad_factor(factor: object) -> None:
    assert_one_line_error(Decimate, factor, match="factor")


def test_decimate_bad_input() -> None:
    assert_one_line_error(Decimate(4), torch.rand(1, 1, 10, 12), match="divisible")
    assert_one_line_error(Decimate(3), torch.rand(1, 1, 9, 10), match="divisible")
    for fn in (Decimate(2).forward, Decimate(2).adjoint, Decimate(2).pinv):
        assert_one_line_error(fn, torch.rand(3, 8, 8))
        assert_one_line_error(fn, torch.ones(1, 1, 8, 8, dtype=torch.long))
    assert Decimate(np.int64(3)).factor == 3


# -- satellite_operator -------------------------------------------------------------
@pytest.mark.parametrize("factor", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_satellite_adjointness(factor: int, channels: int) -> None:
    assert_adjoint(satellite_operator(0.15, factor=factor, gain=0.01, sigma=0.01), channels)


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_satellite_is_blur_then_decimate(factor: int) -> None:
    op = satellite_operator(0.2, factor=factor)
    x = rand((1, 3, SIZE, SIZE))
    blurred = Blur(mtf_psf(0.2, factor=factor), boundary="symmetric")(x)
    torch.testing.assert_close(op(x), blurred[..., ::factor, ::factor], rtol=1e-12, atol=1e-12)
    assert isinstance(op, Compose) and op.ops[0].boundary == "symmetric"


@pytest.mark.parametrize("factor", [2, 3, 4, 5])
def test_satellite_mtf_at_the_sensors_nyquist(factor: int) -> None:
    # A cosine at the sensor's Nyquist, 1 / (2 factor) cycle per fine pixel, is sampled
    # at its extrema and comes out as +-m: the sensor's MTF, measured on its own grid.
    m, n = 0.15, 24 * factor
    col = torch.cos(math.pi * torch.arange(n, dtype=torch.float64) / factor)
    op = satellite_operator(m, factor=factor)
    inner = slice(4, -4)  # away from the mirrored border
    for pattern in (col.expand(1, 1, n, n), col[:, None].expand(1, 1, n, n)):
        y = op(pattern)
        expected = m * pattern[..., ::factor, ::factor]
        torch.testing.assert_close(y[..., inner, inner], expected[..., inner, inner], rtol=0, atol=0.02 * m)


@pytest.mark.parametrize(("factor", "halo"), [(1, 3), (2, 5), (3, 8), (4, 10)])
def test_satellite_scale_halo_task_shapes(factor: int, halo: int) -> None:
    op = satellite_operator(0.15, factor=factor, sigma=0.01)
    assert op.scale == 1 / factor and op.halo == halo == mtf_psf(0.15, factor=factor).shape[0] // 2
    assert op.task == ("deblur" if factor == 1 else "sr")
    x = rand((2, 4, SIZE, SIZE), dtype=torch.float32)
    y = op(x)
    assert y.shape == (2, 4, SIZE // factor, SIZE // factor) and y.dtype == torch.float32
    assert op.adjoint(y).shape == op.pinv(y).shape == x.shape
    assert op.input_shape(tuple(y.shape)) == tuple(x.shape)


def test_satellite_noise_model() -> None:
    op = satellite_operator(0.15, factor=2, gain=0.004, sigma=0.01)
    assert isinstance(op.noise, PoissonGaussianNoise)
    assert op.noise.gain == 0.004 and op.sigma == 0.01
    op = satellite_operator(0.15, factor=2, sigma=0.03)
    assert type(op.noise) is GaussianNoise and op.sigma == 0.03
    x = rand((1, 3, 16, 16), dtype=torch.float32)
    a, b = (op.measure(x, torch.Generator().manual_seed(s)) for s in (5, 5))
    assert torch.equal(a, b) and not torch.equal(a, op.measure(x, torch.Generator().manual_seed(6)))


@pytest.mark.parametrize(
    "make", [lambda: satellite_operator(0.3, factor=2, gain=0.01, sigma=0.02),
             lambda: Decimate(2, noise=PoissonGaussianNoise(0.01, 0.02))],
    ids=["satellite", "decimate"],
)
def test_poisson_gaussian_variance_grows_with_level(make) -> None:
    op, gain, sigma = make(), 0.01, 0.02
    variances = []
    for i, level in enumerate((0.05, 0.3, 0.8)):
        x = torch.full((1, 1, 256, 256), level, dtype=torch.float64)
        y = op.measure(x, torch.Generator().manual_seed(i))
        expected = gain * level + sigma**2
        assert abs(y.mean().item() - level) < 0.01
        assert abs(y.var().item() - expected) < 0.06 * expected, (level, y.var().item(), expected)
        variances.append(y.var().item())
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 5 * variances[0]  # signal-dependent, not a constant floor


def test_satellite_gaussian_noise_is_level_independent() -> None:
    op = satellite_operator(0.3, factor=2, sigma=0.05)
    for level in (0.1, 0.9):
        y = op.measure(torch.full((1, 1, 256, 256), level), torch.Generator().manual_seed(0))
        assert abs(y.std().item() - 0.05) < 0.003


@pytest.mark.parametrize(
    "kwargs",
    [{"mtf_nyquist": 0}, {"mtf_nyquist": 1.2}, {"mtf_nyquist": math.nan}, {"factor": 0},
     {"factor": 2.5}, {"factor": True}, {"gain": 0}, {"gain": -1.0}, {"gain": math.inf},
     {"sigma": -0.1}, {"sigma": 25.0}],
)
def test_satellite_bad_args(kwargs: dict) -> None:
    args = {"mtf_nyquist": 0.15, "factor": 2, "gain": 0.01, "sigma": 0.01} | kwargs
    assert_one_line_error(satellite_operator, **args)


def test_satellite_refuses_indivisible_size() -> None:
    assert_one_line_error(satellite_operator(0.15, factor=4), torch.rand(1, 3, 30, 32), match="divisible")


def test_decimate_interpolation_passes_through_the_samples_and_is_smooth():
    from skimage import data

    x = torch.from_numpy(data.camera()[:128, :128].astype(np.float64) / 255)[None, None]
    for f in (2, 3, 4):
        d = Decimate(f)
        xi = d.interpolate(d(x[..., : 128 - 128 % f, : 128 - 128 % f]))
        assert torch.allclose(d(xi), d(x[..., : 128 - 128 % f, : 128 - 128 % f]), atol=1e-12)
        # Far better than zero insertion (the exact pinv) as a starting image.
        ref = x[..., : 128 - 128 % f, : 128 - 128 % f]
        err_interp = ((xi - ref) ** 2).mean()
        err_zero = ((d.pinv(d(ref)) - ref) ** 2).mean()
        assert err_interp < err_zero / 10


def test_sensor_pinv_is_a_usable_initialisation():
    from skimage import data

    x = torch.from_numpy(data.camera()[:128, :128].astype(np.float64) / 255)[None, None]
    op = satellite_operator(0.15, factor=4, sigma=0.01)
    y = op.measure(x, torch.Generator().manual_seed(0))
    psnr = float(10 * torch.log10(1 / ((op.pinv(y).clamp(0, 1) - x) ** 2).mean()))
    assert psnr > 20
