"""Generic tests over every operator, then per-operator and factory checks.

A new operator is covered by adding one line to ``OPERATORS``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from restore.errors import RestoreError
from restore.operators import (
    Blur,
    Compose,
    Denoise,
    Downsample,
    GaussianNoise,
    Inpaint,
    Operator,
    PoissonGaussianNoise,
    gaussian_kernel,
    load_kernel,
    make_operator,
    motion_kernel,
    parse_kernel,
    random_mask,
)

SIZE = 24  # divisible by every downsampling factor


def _mask(shape: tuple[int, ...] = (SIZE, SIZE)) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return (torch.rand(shape, generator=g) > 0.4).float()


# name -> (factory, pinv is exact: A pinv(A x) == A x)
OPERATORS = {
    "denoise": (lambda: Denoise(sigma=0.1), True),
    "blur-gauss-fft": (lambda: Blur(gaussian_kernel(2.0), sigma=0.05), False),
    "blur-motion-direct": (lambda: Blur(motion_kernel(7, 30), sigma=0.05, method="direct"), False),
    "blur-reflect": (lambda: Blur(gaussian_kernel(1.0), sigma=0.05, boundary="reflect"), False),
    "blur-symmetric": (lambda: Blur(motion_kernel(5, 100), boundary="symmetric"), False),
    "blur-replicate": (lambda: Blur(gaussian_kernel(1.0), boundary="replicate"), False),
    "blur-even-kernel": (lambda: Blur(torch.rand(4, 6) + 0.1, sigma=0.05), False),
    "blur-wide-kernel": (lambda: Blur(gaussian_kernel(5.0, size=31), method="direct"), False),
    "blur-reflect-wide": (lambda: Blur(gaussian_kernel(4.0, size=51), boundary="reflect"), False),
    "blur-invertible": (lambda: Blur(gaussian_kernel(0.5, size=3), sigma=0.05, eps=1e-12), True),
    "sr2-bicubic": (lambda: Downsample(2, sigma=0.05), True),
    "sr3-bicubic": (lambda: Downsample(3), True),
    "sr4-bicubic": (lambda: Downsample(4, sigma=0.05), True),
    "sr4-box": (lambda: Downsample(4, filter="box", sigma=0.05), True),
    "inpaint-hw": (lambda: Inpaint(_mask(), sigma=0.05), True),
    "inpaint-bchw": (lambda: Inpaint(_mask((2, 3, SIZE, SIZE)), sigma=0.05), True),
    "compose-blur-sr": (
        lambda: Compose(Blur(gaussian_kernel(0.5, size=3), eps=1e-12), Downsample(2, sigma=0.05)),
        True,
    ),
    "poisson-gaussian": (lambda: Denoise(noise=PoissonGaussianNoise(gain=0.01, sigma=0.02)), True),
}
NAMES = list(OPERATORS)
EXACT_PINV = [n for n, (_, exact) in OPERATORS.items() if exact]


def make(name: str) -> Operator:
    return OPERATORS[name][0]()


def rand(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# -- generic -----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_adjointness(name: str) -> None:
    op = make(name)
    x = rand((2, 3, SIZE, SIZE), 1) - 0.5
    ax = op(x)
    y = rand(tuple(ax.shape), 2) - 0.5
    lhs = (ax * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    assert abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs), 1e-12)


@pytest.mark.parametrize("name", EXACT_PINV)
def test_pinv_consistency(name: str) -> None:
    op = make(name)
    ax = op(rand((2, 3, SIZE, SIZE), 3))
    torch.testing.assert_close(op(op.pinv(ax)), ax, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shapes(name: str, channels: int) -> None:
    op = make(name)
    batch = 2 if name == "inpaint-bchw" and channels == 3 else 1
    if name == "inpaint-bchw" and channels != 3:
        pytest.skip("mask has 3 channels")
    x = rand((batch, channels, SIZE, SIZE), dtype=torch.float32)
    y = op(x)
    side = round(SIZE * op.scale)
    assert y.shape == (batch, channels, side, side) and y.dtype == torch.float32
    assert op.adjoint(y).shape == x.shape
    assert op.pinv(y).shape == x.shape
    assert op.input_shape(tuple(y.shape)) == tuple(x.shape)
    assert op.task in ("denoise", "deblur", "sr", "inpaint")
    assert isinstance(op.halo, int) and op.halo >= 0


@pytest.mark.parametrize("name", NAMES)
def test_measure_is_seeded(name: str) -> None:
    op = make(name)
    x = rand((2, 3, SIZE, SIZE), dtype=torch.float32)
    a = op.measure(x, torch.Generator().manual_seed(5))
    b = op.measure(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if op.sigma > 0 or not isinstance(op.noise, GaussianNoise):
        c = op.measure(x, torch.Generator().manual_seed(6))
        assert not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [torch.rand(3, SIZE, SIZE), torch.ones(1, 1, SIZE, SIZE, dtype=torch.long)])
def test_rejects_non_image(name: str, bad: torch.Tensor) -> None:
    op = make(name)
    for fn in (op.forward, op.adjoint, op.pinv, op.measure):
        with pytest.raises(RestoreError):
            fn(bad)


# -- noise -------------------------------------------------------------------------
def test_gaussian_noise_std_and_no_clipping() -> None:
    noise = GaussianNoise(0.1)
    y = noise(torch.zeros(1, 1, 256, 256), torch.Generator().manual_seed(0))
    assert abs(y.std().item() - 0.1) < 0.003 and abs(y.mean().item()) < 0.003
    assert (y < 0).any()  # not clipped
    assert torch.equal(GaussianNoise(0.0)(y), y)


def test_poisson_gaussian_variance() -> None:
    noise = PoissonGaussianNoise(gain=0.01, sigma=0.02)
    y = noise(torch.full((1, 1, 256, 256), 0.5), torch.Generator().manual_seed(0))
    assert abs(y.mean().item() - 0.5) < 0.005
    expected = math.sqrt(0.01 * 0.5 + 0.02**2)
    assert abs(y.std().item() - expected) / expected < 0.03


@pytest.mark.parametrize("sigma", [-0.1, math.nan, math.inf, 25.0, "0.1", None, True])
def test_bad_sigma(sigma: object) -> None:
    with pytest.raises(RestoreError, match="sigma"):
        GaussianNoise(sigma)  # type: ignore[arg-type]
    with pytest.raises(RestoreError, match="sigma"):
        Denoise(sigma=sigma)  # type: ignore[arg-type]


@pytest.mark.parametrize("gain", [0, -1.0, math.nan, math.inf])
def test_bad_gain(gain: float) -> None:
    with pytest.raises(RestoreError, match="gain"):
        PoissonGaussianNoise(gain, 0.01)


# -- kernels -----------------------------------------------------------------------
def test_kernel_factories() -> None:
    g = gaussian_kernel(1.6)
    assert g.shape == (11, 11) and torch.allclose(g.sum(), torch.tensor(1.0))
    assert torch.allclose(g, g.T) and g.argmax() == 60
    for length, angle in [(1, 0), (7, 30), (15.5, 45), (10, 90), (20, 137)]:
        k = motion_kernel(length, angle)
        assert k.ndim == 2 and k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1]
        assert (k >= 0).all() and abs(k.sum().item() - 1) < 1e-6
    # Horizontal motion spreads along a row only.
    k = motion_kernel(9, 0)
    assert k[k.shape[0] // 2].sum() > 0.999


def test_parse_and_load_kernel(tmp_path) -> None:
    assert parse_kernel("gaussian:2").shape == gaussian_kernel(2).shape
    assert torch.equal(parse_kernel("motion:9,30"), motion_kernel(9, 30))
    path = tmp_path / "psf.npy"
    np.save(path, np.ones((4, 4)))
    k = parse_kernel(str(path))
    assert k.shape == (5, 5) and abs(k.sum().item() - 1) < 1e-6 and k[4].sum() == 0
    assert torch.equal(load_kernel(path), k)


@pytest.mark.parametrize(
    "spec",
    ["", "gaussian", "gaussian:", "gaussian:abc", "gaussian:-1", "gaussian:1,2", "motion:5",
     "motion:0,10", "motion:a,b", "box:3", "gaussian:1e9", "missing.npy", "kernel.png"],
)
def test_bad_kernel_spec(spec: str) -> None:
    with pytest.raises(RestoreError) as info:
        parse_kernel(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "array", [np.ones(5), np.ones((3, 3, 3)), -np.ones((3, 3)), np.zeros((3, 3)), np.full((3, 3), np.nan)]
)
def test_bad_kernel_file(tmp_path, array: np.ndarray) -> None:
    path = tmp_path / "k.npy"
    np.save(path, array)
    with pytest.raises(RestoreError, match="kernel"):
        load_kernel(path)


# -- blur --------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", [gaussian_kernel(2.0), motion_kernel(9, 20), torch.rand(33, 29)])
def test_blur_fft_matches_direct(kernel: torch.Tensor) -> None:
    x = rand((1, 2, 20, SIZE))
    fft, direct = Blur(kernel, method="fft"), Blur(kernel, method="direct")
    torch.testing.assert_close(fft(x), direct(x))
    torch.testing.assert_close(fft.adjoint(x), direct.adjoint(x))


def test_blur_is_a_convolution() -> None:
    # A delta image returns the kernel itself, centred.
    k = torch.arange(9.0).reshape(3, 3) + 1
    x = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    x[..., 3, 3] = 1
    for boundary in ("circular", "reflect"):
        y = Blur(k, boundary=boundary)(x)
        torch.testing.assert_close(y[0, 0, 2:5, 2:5], k.double())
    assert Blur(gaussian_kernel(1.6)).halo == 5


@pytest.mark.parametrize("boundary", ["circular", "reflect"])
def test_blur_pinv_deblurs(boundary: str) -> None:
    # A smooth image (what the Wiener prior assumes), mildly blurred.
    x = torch.nn.functional.interpolate(rand((1, 3, 8, 8)), size=(32, 32), mode="bicubic")
    op = Blur(gaussian_kernel(1.0), boundary=boundary)
    y = op(x)
    assert (op.pinv(y) - x).abs().mean() < 0.5 * (y - x).abs().mean()


def test_blur_bad_args() -> None:
    with pytest.raises(RestoreError, match="boundary"):
        Blur(gaussian_kernel(1), boundary="zero")
    with pytest.raises(RestoreError, match="fft"):
        Blur(gaussian_kernel(1), boundary="reflect", method="fft")
    with pytest.raises(RestoreError, match="kernel"):
        Blur(torch.ones(3))
    with pytest.raises(RestoreError, match="kernel"):
        Blur(torch.zeros(3, 3))


# -- downsample --------------------------------------------------------------------
def test_bicubic_matches_matlab_weights() -> None:
    # MATLAB imresize(x, 1/2, 'bicubic') interior taps are (-3, -9, 29, 111, 111, 29, -9, -3) / 256.
    x = torch.zeros(1, 1, 2, 32, dtype=torch.float64)
    x[..., 16] = 1  # output i is centred at input 2i + 0.5: the delta is at offsets 3.5, 1.5, -0.5, -2.5
    y = Downsample(2)(x)[0, 0, 0]
    expected = torch.tensor([0, -3, 29, 111, -9, 0], dtype=torch.float64) / 256
    torch.testing.assert_close(y[5:11], expected)


def test_bicubic_interior_matches_pil() -> None:
    pil = pytest.importorskip("PIL.Image")
    x = np.random.default_rng(0).random((36, 48)).astype(np.float32)
    for f in (2, 3, 4):
        ref = np.asarray(pil.fromarray(x, mode="F").resize((48 // f, 36 // f), pil.BICUBIC))
        y = Downsample(f)(torch.from_numpy(x).double()[None, None])[0, 0].numpy()
        # PIL truncates at the border where MATLAB mirrors: compare the interior.
        assert np.abs(ref - y)[3:-3, 3:-3].max() < 1e-6


def test_downsample_constant_and_box() -> None:
    x = torch.full((1, 2, 12, 12), 0.3, dtype=torch.float64)
    for f in (2, 3, 4):
        torch.testing.assert_close(Downsample(f)(x), torch.full((1, 2, 12 // f, 12 // f), 0.3, dtype=torch.float64))
    x = rand((1, 1, 8, 8))
    torch.testing.assert_close(Downsample(2, filter="box")(x), torch.nn.functional.avg_pool2d(x, 2))


def test_downsample_bad_args() -> None:
    for factor in (5, 1, 0, 2.5, True):
        with pytest.raises(RestoreError, match="2, 3, 4"):
            Downsample(factor)  # type: ignore[arg-type]
    with pytest.raises(RestoreError, match="filter"):
        Downsample(2, filter="lanczos")
    with pytest.raises(RestoreError, match="divisible"):
        Downsample(4)(torch.rand(1, 1, 10, 12))


# -- inpaint -----------------------------------------------------------------------
def test_inpaint_fill_and_mask() -> None:
    mask = random_mask(SIZE, SIZE, 0.7, torch.Generator().manual_seed(0))
    assert mask.shape == (1, 1, SIZE, SIZE) and 0.15 < mask.mean() < 0.45
    op = Inpaint(mask)
    x = torch.full((1, 3, SIZE, SIZE), 0.4)
    filled = op.fill(op(x))
    torch.testing.assert_close(filled, x)
    hole = torch.ones(SIZE, SIZE)
    hole[4:20, 4:20] = 0
    y = Inpaint(hole)(rand((1, 1, SIZE, SIZE), dtype=torch.float32))
    f = Inpaint(hole).fill(y)
    assert torch.equal(f * hole, y) and f[..., 12, 12].item() > 0.2


def test_inpaint_bad_args() -> None:
    with pytest.raises(RestoreError, match="binary"):
        Inpaint(torch.full((4, 4), 0.5))
    with pytest.raises(RestoreError, match="shape"):
        Inpaint(torch.ones(4))
    with pytest.raises(RestoreError, match="mask"):
        Inpaint(torch.ones(4, 4))(torch.rand(1, 1, 5, 5))
    with pytest.raises(RestoreError, match="fraction_missing"):
        random_mask(4, 4, 1.5)


# -- compose -----------------------------------------------------------------------
def test_compose_order_scale_halo() -> None:
    blur, down = Blur(gaussian_kernel(1.0)), Downsample(2, sigma=0.1)
    op = Compose(blur, down)
    x = rand((1, 1, 16, 16))
    torch.testing.assert_close(op(x), down(blur(x)))
    assert op.scale == 0.5 and op.task == "sr" and op.noise is down.noise
    assert op.halo == blur.halo + down.halo
    assert Compose(down, blur).halo == down.halo + 2 * blur.halo
    assert Compose(blur, down, task="deblur").task == "deblur"
    with pytest.raises(RestoreError):
        Compose()
    with pytest.raises(RestoreError):
        Compose(blur, "down")  # type: ignore[arg-type]


# -- factory -----------------------------------------------------------------------
def test_make_operator() -> None:
    assert isinstance(make_operator("denoise", sigma=25 / 255), Denoise)
    blur = make_operator("deblur", sigma=0.01)
    assert isinstance(blur, Blur) and blur.kernel.shape == (11, 11)
    sr = make_operator("sr")
    assert isinstance(sr, Downsample) and sr.factor == 4
    assert make_operator("sr", scale=2, downsample_filter="box").filter == "box"
    assert isinstance(make_operator("inpaint", mask=torch.ones(8, 8)), Inpaint)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "dehaze"},
        {"task": "sr", "scale": 5},
        {"task": "denoise", "sigma": -1},
        {"task": "deblur", "kernel": "gaussian:x"},
        {"task": "inpaint"},
        {"task": "denoise", "scale": 2},
        {"task": "sr", "downsample_filter": "nearest"},
    ],
)
def test_make_operator_errors(kwargs: dict) -> None:
    task = kwargs.pop("task")
    with pytest.raises(RestoreError) as info:
        make_operator(task, **kwargs)
    assert "\n" not in str(info.value)
