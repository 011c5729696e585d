"""Deep optimal transport (Adrai, Ohayon, Elad, Michaeli 2023): a perception/distortion slider for any restorer.

Calibration: the latent patches (p x p, D = C p p) of a restorer's outputs and
of natural images, unpaired, a dozen or so of each, are summarised by float64
Gaussians N(mu_s, S_s) and N(mu_t, S_t). Restoring: the output's latent is cut
into overlapping patches, each moved by the closed-form optimal transport map
x -> T0 (x - mu_s) + mu_t, folded back by averaging, decoded; the result is
mixed in pixel space, x_alpha = (1 - alpha) x_restored + alpha x_transported,
alpha = ``perception`` in [-1, 2] (0: the restorer's own output, 1: transported).

Two departures from the paper, both measured (models/deep-ot/README.md):

- x_transported = x_restored + decode(T z) - decode(z), z the latent of x_restored:
  the transport's change alone, without the autoencoder's own reconstruction
  error (28 dB), which the paper's decode(T z) carries into every output.
- By default the statistics and the map are of the latent's detail: its mean over
  5 x 5 cells around each position is taken off first and added back after.
  Two sets of 16 scenes differ in colour and shading far more than a restorer
  changes an image, and the paper's raw-latent map imprints that difference
  (a colour cast) on every output. ``local_mean=0`` is the paper's way.

The latent is our compressive autoencoder's by default, or, as in the paper, a
local diffusers AutoencoderKL folder's (``autoencoder=FOLDER``, ``restore.tuners.kl_codec``).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Sequence

import torch

from restore.errors import RestoreError
from restore.noise_field import NoiseSource, PositionalNoise
from restore.operators.base import Operator
from restore.restorers.base import Restoration, Restorer
from restore.tuners.calibration import Calibration, describe_operator, load_calibration, save_calibration
from restore.tuners.gaussian_ot import GaussianMap, gelbrich_distance
from restore.tuners.calibration_options import calibration_options
from restore.tuners.codecs import Codec, open_codec
from restore.tuners.latent_codec import DECODER_REACH, DEFAULT_AUTOENCODER, ENCODER_REACH, STRIDE, check_channels
from restore.tuners.latent_patches import fold_patches, split_local_mean, unfold_patches
from restore.tuners.latent_stats import (
    DEFAULT_LOCAL_MEAN,
    DEFAULT_PATCH,
    as_image_list,
    check_enough_samples,
    halves_w2,
    latent_patch_stats,
)

PERCEPTION_RANGE = (-1.0, 2.0)


def check_perception(value: float) -> float:
    """alpha in [-1, 2]: beyond [0, 1] extrapolates, as the paper allows."""
    lo, hi = PERCEPTION_RANGE
    if not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise RestoreError(f"perception must be a number in [{lo:g}, {hi:g}] (0: the restorer's output, 1: transported), "
                           f"got {value!r}")
    return float(value)


def latent_footprint(patch: int, local_mean: int = 0, codec: Codec | None = None) -> int:
    """Pixels of the restored image one tuned pixel depends on, rounded up to the latent stride.

    Encoder reach; the map in latent cells (a position hears the patches up to
    p - 1 cells away together, each patch of detail hears local_mean // 2 cells
    further); decoder reach; and up to one cell of grid alignment at a tile's top-left.
    Of ``codec`` (default: our compressive autoencoder).
    """
    stride, encoder, decoder = (codec.stride, codec.encoder_reach, codec.decoder_reach) if codec else (
        STRIDE, ENCODER_REACH, DECODER_REACH)
    cells = patch - 1 + local_mean // 2
    reach = encoder + decoder + stride * cells + stride
    return math.ceil(reach / stride) * stride


def tile_origins(noise: NoiseSource | None, count: int) -> list[tuple[int, int]]:
    """Where each image of a batch sits in the whole image (output pixels).

    The pipeline hands every restorer a positional noise source that knows its
    tiles' origins; a direct call restores whole images, at (0, 0).
    """
    if isinstance(noise, PositionalNoise) and len(noise.origins) == count:
        return list(noise.origins)
    return [(0, 0)] * count


class DeepOT(Restorer):
    """A restorer wrapped with a calibrated latent optimal-transport map.

    Args:
        restorer: the restorer to tune (the one the calibration was made with).
        calibration: from :meth:`calibrate` or :meth:`load`.
        perception: alpha in [-1, 2].
        residual: add the transport's change to the restorer's output (default) rather
            than decode the transported latent directly (the paper).
        codec: an already loaded autoencoder (default: the calibration's, a shipped name or an
            AutoencoderKL folder whose sha256 must match the one recorded).

    Example:
        >>> tuner = DeepOT.calibrate(restore.load("lidia"), op, noisy_images, clean_images)  # doctest: +SKIP
        >>> tuner.perception = 0.7; tuner.save("lidia-s25.dot")  # doctest: +SKIP
        >>> sharper = tuner.restore(y, op).image  # doctest: +SKIP
    """

    name = "dot"
    description = "deep optimal transport: latent Gaussian OT between a restorer's outputs and natural images"

    def __init__(self, restorer: Restorer, calibration: Calibration, *, perception: float = 1.0, residual: bool = True,
                 codec: Codec | None = None) -> None:
        calibration.check_matches(restorer.name, calibration.task)
        self.inner = restorer
        self.calibration = calibration
        self.perception = check_perception(perception)
        self.residual = residual
        self.codec = codec or open_codec(calibration.autoencoder, device=restorer.device,
                                         digest=calibration.autoencoder_digest or None)
        expected = self.codec.latent_channels * calibration.patch**2
        if calibration.source.dim != expected:
            raise RestoreError(f"the tuner's statistics have {calibration.source.dim} dimensions; autoencoder "
                               f"'{self.codec.name}' with {calibration.patch}x{calibration.patch} patches gives {expected}")
        self.map = GaussianMap.between(calibration.source, calibration.target)
        # What the pipeline asks of a restorer: the wrapped one's, plus the latent map's reach.
        self.tasks = (calibration.task,)
        self.operators = restorer.operators
        self.channels = (calibration.channels,)
        self.stochastic = restorer.stochastic
        self.tile_multiple = restorer.tile_multiple
        # An AutoencoderKL's GroupNorm and attention see the whole tile: there tiles agree only up to blending.
        self.halo = restorer.halo + latent_footprint(calibration.patch, calibration.local_mean, self.codec)
        self.device = restorer.device

    # ---- calibration -------------------------------------------------------------
    @classmethod
    def calibrate(
        cls,
        restorer: Restorer,
        operator: Operator,
        degraded_images: torch.Tensor | Sequence[torch.Tensor],
        natural_images: torch.Tensor | Sequence[torch.Tensor],
        *,
        patch: int = DEFAULT_PATCH,
        local_mean: int = DEFAULT_LOCAL_MEAN,
        autoencoder: str | Path = DEFAULT_AUTOENCODER,
        perception: float = 1.0,
        seed: int = 0,
        tile: int = 512,
        precision: str = "fp32",
    ) -> "DeepOT":
        """Fit the map: restore ``degraded_images``, compare their latent patches with ``natural_images``'.

        The two sets need not show the same scenes.

        Args:
            restorer: the restorer to tune.
            operator: the degradation ``degraded_images`` were made with.
            degraded_images: measurements (B x C x H x W tensor or list of images).
            natural_images: clean images (list or tensor), 1 or 3 channels like the outputs.
            patch: latent patch side p (D = latent channels x p p: 96 p p for ours, 4 p p for an SD AutoencoderKL).
            local_mean: latent cells of the local mean taken off before the statistics (0: the paper's raw latent).
            autoencoder: a shipped autoencoder's name, or a local diffusers AutoencoderKL folder
                (``restore.tuners.kl_codec``: its scaled posterior mean is the latent).
            perception: alpha of the returned tuner.
            seed: seeds stochastic restorers.
            tile: tile side the restorer runs with.
            precision: compute precision of the restorer ("fp32", "bf16", "fp16"), as in ``Pipeline``.
        """
        from restore.pipeline import Pipeline  # the pipeline imports the restorers; keep this module light

        settings = calibration_options(patch, local_mean, autoencoder)  # before any image is restored
        degraded = as_image_list(degraded_images, "degraded images")
        natural = as_image_list(natural_images, "natural images")
        _common_channels(degraded, natural)
        codec = open_codec(settings.autoencoder, device=restorer.device)
        upscale = 1 / operator.scale
        _check_counts(codec.latent_channels * patch * patch, {
            "degraded images": [(round(x.shape[-2] * upscale), round(x.shape[-1] * upscale)) for x in degraded],
            "natural images": [tuple(x.shape[-2:]) for x in natural],
        }, codec.stride)
        pipe = Pipeline(restorer, operator, tile=tile, seed=seed, device=restorer.device, precision=precision,
                        log=lambda _: None)
        restored = [pipe.run(y).image for y in degraded]
        return cls.from_restored(restorer, operator, restored, natural, patch=patch, local_mean=local_mean,
                                 perception=perception, codec=codec)

    @classmethod
    def from_restored(
        cls,
        restorer: Restorer,
        operator: Operator,
        restored_images: torch.Tensor | Sequence[torch.Tensor],
        natural_images: torch.Tensor | Sequence[torch.Tensor],
        *,
        patch: int = DEFAULT_PATCH,
        local_mean: int = DEFAULT_LOCAL_MEAN,
        autoencoder: str | Path = DEFAULT_AUTOENCODER,
        perception: float = 1.0,
        residual: bool = True,
        codec: Codec | None = None,
    ) -> "DeepOT":
        """Fit the map from outputs ``restorer`` already gave for ``operator`` (args as for :meth:`calibrate`)."""
        settings = calibration_options(patch, local_mean, autoencoder if codec is None else codec.name)
        patch, local_mean = settings.patch, settings.local_mean
        restored = as_image_list(restored_images, "restored images")
        natural = as_image_list(natural_images, "natural images")
        channels = _common_channels(restored, natural)
        codec = codec or open_codec(settings.autoencoder, device=restorer.device)
        _check_counts(codec.latent_channels * patch * patch, {
            "restored images": [tuple(x.shape[-2:]) for x in restored],
            "natural images": [tuple(x.shape[-2:]) for x in natural],
        }, codec.stride)
        source = latent_patch_stats(codec, restored, patch, local_mean)
        target = latent_patch_stats(codec, natural, patch, local_mean)
        calibration = Calibration(
            source=source, target=target, model=restorer.name, operator=describe_operator(operator), patch=patch,
            autoencoder=codec.name, autoencoder_digest=codec.digest, channels=channels, local_mean=local_mean, versions=_versions(),
            counts={"restored_images": len(restored), "natural_images": len(natural),
                    "source_patches": source.count, "target_patches": target.count},
            # Whether the restorer's mark on the statistics stands out from what the choice of scenes does to them.
            diagnostics={"restored_to_natural_w2": gelbrich_distance(source, target),
                         "natural_halves_w2": halves_w2(codec, natural, patch, local_mean)},
        )
        return cls(restorer, calibration, perception=perception, residual=residual, codec=codec)

    def save(self, path: str | Path) -> Path:
        """Write the calibration (not the restorer) to a tuner file, atomically."""
        return save_calibration(self.calibration, path)

    @classmethod
    def load(cls, path: str | Path, restorer: Restorer, *, perception: float = 1.0, residual: bool = True,
             autoencoder: str | Path | None = None) -> "DeepOT":
        """Wrap ``restorer`` with the calibration in tuner file ``path`` (refused if made for another model).

        ``autoencoder``: where the AutoencoderKL folder the file records now is, if it moved
        (its sha256 must still match).
        """
        calibration = load_calibration(path)
        calibration.check_matches(restorer.name, calibration.task)
        codec = None if autoencoder is None else open_codec(
            autoencoder, device=restorer.device, digest=calibration.autoencoder_digest or None)
        return cls(restorer, calibration, perception=perception, residual=residual, codec=codec)

    # ---- the Restorer protocol ------------------------------------------------------
    def to(self, device: str | torch.device) -> "DeepOT":
        self.inner.to(device)
        self.codec.to(device)
        self.device = torch.device(device)
        return self

    def prepare(self, sample: torch.Tensor, operator: Operator, *,
                generator: torch.Generator | None = None) -> tuple["DeepOT", Operator]:
        """The wrapped restorer's whole-image decisions (noise level, adaptation); the map needs none."""
        self.check(sample, operator)
        inner, operator = self.inner.prepare(sample, operator, generator=generator)
        prepared = copy.copy(self)
        prepared.inner = inner
        return prepared, operator

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        super().check(y, operator)
        calibrated = self.calibration.operator.get("scale", 1.0)
        if not math.isclose(operator.scale, calibrated, rel_tol=1e-6):
            raise RestoreError(f"this tuner was calibrated for scale {calibrated:g}, the operator has scale {operator.scale:g}")

    def restore(self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None = None,
                noise: NoiseSource | None = None) -> Restoration:
        """The wrapped restorer's result with its image moved by ``perception`` towards the transported one.

        At perception 0 the wrapped restorer's result is returned as it is.
        Samples and std maps, where the restorer gives them, are its own.
        """
        self.check(y, operator)
        result = self.inner.restore(y, operator, generator=generator, noise=noise)
        if self.perception == 0:
            return result
        x = result.image
        origins = tile_origins(noise, x.shape[0])
        change = torch.cat([self.transport_change(x[b : b + 1], origins[b]) for b in range(x.shape[0])])
        image = x + self.perception * change.to(x.device, x.dtype)
        return Restoration(image=image, samples=result.samples, std=result.std,
                           info={**result.info, "perception": self.perception})

    def transport_change(self, x: torch.Tensor, origin: tuple[int, int] = (0, 0)) -> torch.Tensor:
        """x_transported - x for one 1 x C x H x W restored image whose top-left sits at ``origin`` of the whole image."""
        check_channels(x.shape[1])
        z, where = self.codec.encode(x, origin)
        p = self.calibration.patch
        detail, local_mean = split_local_mean(z, self.calibration.local_mean)
        moved = fold_patches(self.map(unfold_patches(detail, p)), tuple(z.shape[-2:]), p) + local_mean
        transported = self.codec.decode(moved, where, x.shape[1])
        reference = self.codec.decode(z, where, x.shape[1]) if self.residual else x.to(transported.device)
        return transported - reference


def _versions() -> dict[str, str]:
    import restore  # at call time: this module is imported while the package itself is

    return {"restore": restore.__version__, "torch": torch.__version__}


def _common_channels(degraded: list[torch.Tensor], natural: list[torch.Tensor]) -> int:
    a, b = degraded[0].shape[1], natural[0].shape[1]
    check_channels(a)
    if a != b:
        raise RestoreError(f"degraded images have {a} channels but natural images {b}; calibrate with one kind")
    return a


def _check_counts(dim: int, sizes: dict[str, list[tuple[int, int]]], stride: int) -> None:
    """Refuse too few images (by their output sizes) before any restoring is done: the restorer may take minutes."""
    for what, shapes in sizes.items():
        count = sum(math.ceil(h / stride) * math.ceil(w / stride) for h, w in shapes)
        check_enough_samples(count, dim, what, per_image=count / len(shapes))
