"""Satellite-sensor model: optical blur given by an MTF value, sampling, sensor noise."""
from __future__ import annotations

from numbers import Integral

import torch

from restore.errors import RestoreError
from restore.operators.base import Operator
from restore.operators.blur import Blur
from restore.operators.compose import Compose
from restore.operators.decimate import Decimate
from restore.operators.kernels import mtf_psf
from restore.operators.noise import GaussianNoise, NoiseModel, PoissonGaussianNoise

# A sensor sees the scene beyond the image's edges, never the opposite edge, so
# "circular" (which wraps it round) is wrong here. "symmetric" continues the scene
# by its mirror image without a jump, and is the very extension Blur.pinv mirrors
# with, so for this symmetric PSF its Wiener inverse stays exact at the borders.
BOUNDARY = "symmetric"


class SensorOperator(Compose):
    """Blur then decimation, whose ``pinv`` interpolates before deblurring.

    Chaining the factors' pinvs would zero-fill the missing pixels and then
    deblur that, a poor start for iterative restorers; cubic interpolation
    through the samples, then the blur's regularised inverse, is a good one.
    """

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """An initialisation: the blur's pinv of the cubic interpolation of y."""
        blur, decimate = self.ops
        return blur.pinv(decimate.interpolate(y))


def satellite_operator(
    mtf_nyquist: float,
    factor: int = 1,
    gain: float | None = None,
    sigma: float = 0.0,
) -> Operator:
    """A sensor y = decimate_factor(psf * x) + n, as ``Compose(Blur, Decimate)``.

    The PSF is ``mtf_psf(mtf_nyquist, factor=factor)``: a Gaussian whose MTF at
    the sensor's Nyquist (0.5 cycle per **output** pixel) is ``mtf_nyquist``.
    With factor 1 the operator is a deblurring one (task "deblur"); with factor
    > 1 it is super-resolution (task "sr", scale 1 / factor), and x is the image
    on a grid ``factor`` times finer than the sensor's.

    Args:
        mtf_nyquist: MTF at Nyquist, 0 < m < 1 (about 0.15 for Pleiades-class sensors).
        factor: integer >= 1; 1 keeps the sensor's own grid.
        gain: image-unit value of one photo-electron; when given the noise is
            ``PoissonGaussianNoise(gain, sigma)`` (shot noise of variance gain * level).
        sigma: standard deviation of the Gaussian (read) noise, in [0, 1] units.

    Returns:
        The composed operator; its ``noise`` is the sensor noise.

    Raises:
        RestoreError: with a one-line message for any invalid argument.

    Example:
        >>> op = satellite_operator(0.15, factor=4, gain=0.002, sigma=0.005)
        >>> y = op.measure(torch.rand(1, 4, 64, 64), torch.Generator().manual_seed(0))
        >>> y.shape, op.task, op.scale
        (torch.Size([1, 4, 16, 16]), 'sr', 0.25)
    """
    if isinstance(factor, bool) or not isinstance(factor, Integral) or factor < 1:
        raise RestoreError(f"factor must be an integer >= 1, got {factor!r}")
    factor = int(factor)
    noise: NoiseModel = GaussianNoise(sigma) if gain is None else PoissonGaussianNoise(gain, sigma)
    # The Blur's own sigma only sets its pinv's Tikhonov weight; the measurement noise is Compose's.
    blur = Blur(mtf_psf(mtf_nyquist, factor=factor), sigma=noise.sigma, boundary=BOUNDARY)
    if factor == 1:
        return Compose(blur, noise=noise)
    return SensorOperator(blur, Decimate(factor), noise=noise)
