"""The two small entropy models of a mean-scale hyperprior compressive autoencoder.

- ``gaussian_likelihood``: p(z | h) of a Gaussian with the hyper-decoder's mean
  and scale, integrated over the unit interval around z (the probability of
  the quantised value, and during training the density of z + uniform noise).
- ``FactorizedDensity``: p(h), one learned univariate density per channel
  (Balle et al. 2018, appendix 6.1): a monotone map built from softplus-positive
  matrices and tanh gates gives a cumulative function, and the likelihood of
  an interval is the difference of its values at the interval's ends.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOOD_FLOOR = 1e-9
SCALE_FLOOR = 0.11  # below about 0.11 the unit interval holds all the mass anyway


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2))


def gaussian_likelihood(z: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(z - 1/2 < Z < z + 1/2) for Z ~ N(mean, scale^2), elementwise, floored at 1e-9.

    Written on |z - mean| so that both CDF values sit in the lower tail, where
    erfc keeps its precision.
    """
    scale = scale.clamp_min(SCALE_FLOOR)
    d = (z - mean).abs()
    upper = _std_normal_cdf((0.5 - d) / scale)
    lower = _std_normal_cdf((-0.5 - d) / scale)
    return (upper - lower).clamp_min(LIKELIHOOD_FLOOR)


class FactorizedDensity(nn.Module):
    """A learned density per channel for the hyper-latent h.

    Args:
        channels: number of channels of h.
        filters: widths of the hidden layers of the cumulative map.
        init_scale: roughly the initial spread of the density.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        """The cumulative map's logits for C x 1 x N values."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            x = torch.matmul(F.softplus(matrix), x) + bias
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, h: torch.Tensor) -> torch.Tensor:
        """P(h - 1/2 < H < h + 1/2) per element of B x C x H x W ``h``, floored at 1e-9."""
        b, c, hh, ww = h.shape
        values = h.transpose(0, 1).reshape(c, 1, -1)
        lower = self._logits_cdf(values - 0.5)
        upper = self._logits_cdf(values + 0.5)
        # Subtract in the tail where the sigmoid is most precise.
        sign = -torch.sign(lower + upper).detach()
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return lik.reshape(c, b, hh, ww).transpose(0, 1).clamp_min(LIKELIHOOD_FLOOR)
