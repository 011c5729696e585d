"""Gaussian statistics of vectors, their optimal-transport map and the Gelbrich (Gaussian W2) distance.

Everything is float64: covariances of a few hundred dimensions estimated from a
few thousand samples lose several digits to cancellation in float32, and the
matrix square roots below amplify what is lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.errors import RestoreError

# Diagonal loading on top of |lambda_min| when a covariance is not safely positive definite
# (the spec's range is 1e-7 to 1e-5; latent variances here are of order 0.1 to 10).
PSD_EPS = 1e-6


@dataclass(frozen=True)
class GaussianStats:
    """Mean (D) and unbiased covariance (D x D) of ``count`` samples, float64."""

    mean: torch.Tensor
    cov: torch.Tensor
    count: int

    @property
    def dim(self) -> int:
        return self.mean.shape[0]


class StatsAccumulator:
    """Running float64 sums of samples and of their outer products, fed batch by batch.

    Samples are shifted by the first batch's mean before summing, which keeps
    the cancellation in ``sum(x x^T) - n mu mu^T`` small even for latents far from zero.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self.shift: torch.Tensor | None = None
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def add(self, samples: torch.Tensor) -> None:
        """Add N x D samples."""
        if samples.ndim != 2 or samples.shape[1] != self.dim:
            raise RestoreError(f"expected N x {self.dim} samples, got {tuple(samples.shape)}")
        x = samples.detach().to("cpu", torch.float64)
        if self.shift is None:
            self.shift = x.mean(dim=0)
        x = x - self.shift
        self.count += x.shape[0]
        self.total += x.sum(dim=0)
        self.outer += x.T @ x

    def stats(self) -> GaussianStats:
        """Mean and unbiased covariance of everything added (needs at least two samples)."""
        if self.count < 2 or self.shift is None:
            raise RestoreError(f"a covariance needs at least 2 samples, got {self.count}")
        centred_mean = self.total / self.count
        cov = (self.outer - self.count * torch.outer(centred_mean, centred_mean)) / (self.count - 1)
        return GaussianStats(mean=centred_mean + self.shift, cov=symmetric(cov), count=self.count)


def gaussian_stats(samples: torch.Tensor) -> GaussianStats:
    """Mean and unbiased covariance of N x D ``samples`` in float64."""
    acc = StatsAccumulator(samples.shape[-1])
    acc.add(samples)
    return acc.stats()


def symmetric(m: torch.Tensor) -> torch.Tensor:
    return (m + m.T) / 2


def make_psd(cov: torch.Tensor, eps: float = PSD_EPS) -> torch.Tensor:
    """``cov`` with |lambda_min| + eps added to its diagonal when its smallest eigenvalue is below eps.

    Sample covariances of fewer samples than dimensions, or of latent channels
    the autoencoder never uses, are singular, and round-off can make them
    slightly indefinite; the inverse square root of the map needs them definite.
    A covariance already well conditioned is returned unchanged.
    """
    cov = symmetric(cov.to(torch.float64))
    smallest = float(torch.linalg.eigvalsh(cov)[0])
    if smallest >= eps:
        return cov
    return cov + (abs(smallest) + eps) * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)


def _spectral(m: torch.Tensor, power: float) -> torch.Tensor:
    """m^power of a symmetric PSD matrix through its eigendecomposition (negative round-off clipped)."""
    values, vectors = torch.linalg.eigh(symmetric(m))
    values = values.clamp(min=0.0)
    if power < 0:
        values = torch.where(values > 0, values, torch.full_like(values, float("inf")))
    return symmetric((vectors * values**power) @ vectors.T)


def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """The PSD square root of a symmetric PSD matrix."""
    return _spectral(m, 0.5)


def inv_sqrtm_pd(m: torch.Tensor) -> torch.Tensor:
    """The inverse square root of a symmetric positive definite matrix."""
    return _spectral(m, -0.5)


def transport_matrix(source_cov: torch.Tensor, target_cov: torch.Tensor) -> torch.Tensor:
    """T0 = S_s^{-1/2} (S_s^{1/2} S_t S_s^{1/2})^{1/2} S_s^{-1/2}: the W2-optimal linear map N(0, S_s) -> N(0, S_t).

    Both covariances go through :func:`make_psd` first. T0 is symmetric and
    T0 S_s T0 = S_t.
    """
    s = make_psd(source_cov)
    t = make_psd(target_cov)
    root = sqrtm_psd(s)
    inv_root = inv_sqrtm_pd(s)
    return symmetric(inv_root @ sqrtm_psd(root @ t @ root) @ inv_root)


@dataclass(frozen=True)
class GaussianMap:
    """x -> T (x - mu_s) + mu_t, the optimal transport map between two Gaussians."""

    matrix: torch.Tensor
    source_mean: torch.Tensor
    target_mean: torch.Tensor

    @classmethod
    def between(cls, source: GaussianStats, target: GaussianStats) -> "GaussianMap":
        if source.dim != target.dim:
            raise RestoreError(f"source and target statistics differ in dimension: {source.dim} vs {target.dim}")
        return cls(transport_matrix(source.cov, target.cov), source.mean, target.mean)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Map ... x D samples (computed in float64, returned in x's dtype)."""
        y = (x.to(torch.float64) - self.source_mean) @ self.matrix + self.target_mean  # T is symmetric
        return y.to(x.dtype)


def gelbrich_distance(a: GaussianStats, b: GaussianStats) -> float:
    """Squared Gelbrich (Gaussian W2) distance: ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2).

    The W2 distance between the Gaussians with these moments, and a lower bound
    of W2 between any distributions that have them.
    """
    if a.dim != b.dim:
        raise RestoreError(f"statistics differ in dimension: {a.dim} vs {b.dim}")
    root = sqrtm_psd(a.cov)
    cross = sqrtm_psd(root @ b.cov @ root)
    value = ((a.mean - b.mean) ** 2).sum() + torch.trace(a.cov) + torch.trace(b.cov) - 2 * torch.trace(cross)
    return max(float(value), 0.0)
