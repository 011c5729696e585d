"""The LIDIA restorer: shipped networks, noise-level handling, instance adaptation."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from restore.errors import RestoreError
from restore.nets.lidia import Lidia, LidiaConfig
from restore.operators.base import Operator
from restore.operators.denoise import Denoise
from restore.operators.noise_level import estimate_image_sigma
from restore.options import option
from restore.restorers.adaptation import AdaptationSettings, adapt
from restore.restorers.base import Restoration, Restorer, register
from restore.restorers.lidia_checkpoint import read_checkpoint
from restore.tiling import tiled_apply
from restore.weights import WEIGHTS_DIR, load_net, shipped

# Smallest image side LIDIA accepts: the scale-1 reflect padding (p - 1 + (p - 1) // 2 + 1
# = 10 px for 7x7 patches) must be smaller than the image.
MIN_SIDE = 16
# Input context an output pixel depends on: patch, both search windows, the
# dilated scale and the aggregation branch (56 px measured: tiles with it equal one call).
HALO = 56
# BatchNorm at inference: running statistics (folded) or each call's batch statistics.
BN_MODES = ("eval", "batch")
ADAPT_MODES = ("none", "internal", "external")


def shipped_models(folder: Path | None = None) -> dict[str, dict[float, str]]:
    """{"gray"|"color": {sigma_255: weights name}} from the manifest."""
    return {color: {float(card["sigma"]): name for name, card in shipped("lidia", folder, color=color).items()}
            for color in ("gray", "color")}


@dataclass(frozen=True)
class LidiaOptions:
    adapt: str | None = option(None, "instance adaptation: internal (on the noisy image) or external (--adapt-ref)",
                               choices=ADAPT_MODES)
    adapt_ref: torch.Tensor | None = option(None, "clean reference, 1 x C x H x W in [0, 1], for external adaptation")
    adapt_settings: AdaptationSettings | None = option(None, "steps, learning rate and crop of the adaptation")
    tile: int = option(512, "tile side larger images are cut into (memory ~1 KB per pixel of tile plus halo)",
                       low=MIN_SIDE)
    single_pass: int = option(640, "images with no side above this go through in one call (a 512 pipeline tile "
                              "plus its halo does)", low=MIN_SIDE)
    chunk: int = option(256, "pixel positions per network pass and thread (256 keeps a pass's activations in L2)",
                        low=1)
    bn: str = option("eval", "BatchNorm at inference: running statistics (folded) or each image's own",
                     choices=BN_MODES)
    weights_dir: Path | None = option(None, "folder of the shipped weights (default: the package's)")
    weights: Path | None = option(None, "the LIDIA authors' checkpoint (.pt) or a folder `restore convert-weights` "
                                  "wrote (default: the shipped weights)")

    def __post_init__(self) -> None:
        if self.weights is not None and self.weights_dir is not None:
            raise RestoreError("give weights or weights_dir, not both (both name the weights LIDIA runs)")
        if self.adapt == "external" and self.adapt_ref is None:
            raise RestoreError("external adaptation needs a clean reference image (--adapt-ref FILE)")


@register("lidia")
class LidiaRestorer(Restorer):
    """LIDIA denoiser (Vaksman, Elad & Milanfar 2020), LIDIA-S architecture.

    One network per noise level and colour mode; other noise levels use the
    nearest network with the image rescaled so that its noise matches the
    network's (exact for the noise, a mild contrast change for the image).

    Options (``LidiaOptions``):
        adapt: None, "internal" (self-supervised on the noisy image) or "external".
        adapt_ref: clean reference image (1 x C x H x W tensor in [0, 1]) for "external".
        adapt_settings: steps, learning rate, crop size of the adaptation.
        tile: side of the tiles larger images are cut into (memory: about 1 KB per
            pixel of tile plus halo, so 512 -> 0.4 GB over the process's own).
        single_pass: images with no side above this are processed in one call; 640
            takes the pipeline's default 512 tile with LIDIA's halo without cutting it again.
        chunk: pixel positions per network pass and thread: 256 keeps a chunk's
            widest activations (56 x 256 x 64 floats) in the L2 cache; larger is slower.
            LIDIA runs on torch's threads as far as CPUs are idle, else on one
            (``restore.nets.threads.op_threads``).
        bn: "eval" (default: BatchNorm with its running statistics, folded into the
            linear maps) or "batch" (each image normalised with its own statistics,
            as the authors' code does: over the whole image for the neighbour-weight
            MLPs, per ``BN_CHUNK`` = 40,000 positions for the separable layers; images
            go through one at a time, and a tiled image has per-tile statistics).
        weights_dir: where the shipped weights live.
        weights: the LIDIA authors' checkpoint file (full or small network, gray or
            colour; converted exactly on load, ``restore.restorers.lidia_checkpoint``) or
            a folder of converted weights (``restore convert-weights lidia FILE -o DIR``).
    """

    name = "lidia"
    operators = (Denoise,)
    channels = (1, 3)
    description = "LIDIA-S patch/non-local learned denoiser with instance adaptation"
    half_precision = {  # benchmarks/studies/precision_safety.py measures them
        "bf16": "safe: -0.0012 dB on BSD68 sigma 25, 68 images (benchmarks/results/bsd68_gray_s25_bf16.md)",
        "fp16": "untested: not measured on a GPU; CPU autocast (few operations in fp16 there): +0.000 dB on a 96 "
                "px crop (benchmarks/results/precision_safety.md)",
    }
    halo = HALO

    Options = LidiaOptions

    def setup(self) -> None:
        o = self.options
        self.adapt = None if o.adapt == "none" else o.adapt  # prepare() clears it on the copy it adapts
        self.adapt_ref = o.adapt_ref
        self.adapt_settings = o.adapt_settings or AdaptationSettings.for_mode(self.adapt or "internal")
        self.tile, self.single_pass, self.chunk, self.bn = o.tile, o.single_pass, o.chunk, o.bn
        self._loaded: dict[str, Lidia] = {}  # as shipped, on the CPU: the source of every copy built
        self._find_weights(o.weights or o.weights_dir or WEIGHTS_DIR)
        self._folded: dict[str, Lidia] = {}
        # Per-channel mean (model units) inputs are centred on; None: each call's own.
        self.centre: torch.Tensor | None = None

    # ---- weights --------------------------------------------------------
    def _find_weights(self, source: Path) -> None:
        """The catalogue of networks in a weights folder, or the one network of an authors' checkpoint file."""
        self.weights_dir = source
        # Noise levels (0-255) a blind network covers without rescaling the image.
        self._blind: dict[str, tuple[float, float]] = {}
        if source.is_file():
            converted = read_checkpoint(source)
            self._catalogue = {converted.color: {converted.sigma: converted.name}}
            self._loaded[converted.name] = converted.build()
            if converted.sigma_range:
                self._blind[converted.name] = converted.sigma_range
            return
        if not source.is_dir():
            raise RestoreError(f"LIDIA weights not found: {source}")
        if source != WEIGHTS_DIR and not (source / "manifest.json").is_file():
            raise RestoreError(f"{source} has no manifest.json: not a weights folder (restore convert-weights lidia "
                               "FILE -o DIR writes one)")
        self._catalogue = shipped_models(source)
        self._blind = {name: tuple(card["sigma_range"]) for name, card in shipped("lidia", source).items()
                       if "sigma_range" in card}

    def pick_model(self, color: str, sigma_255: float) -> tuple[str, float]:
        """Name and training sigma of the network nearest (in log sigma) to ``sigma_255``.

        A blind network's "training sigma" is ``sigma_255`` itself inside its range (no rescaling).
        """
        table = self._catalogue.get(color, {})
        if not table:
            raise RestoreError(f"no LIDIA weights for {color} images in {self.weights_dir}")
        best = min(table, key=lambda s: abs(math.log(s) - math.log(max(sigma_255, 1e-3))))
        name = table[best]
        if name in self._blind:
            low, high = self._blind[name]
            return name, min(max(sigma_255, low), high)
        return name, best


    def _inference_net(self, name: str) -> Lidia:
        """The folded network for ``name``, built once and reused for every image."""
        if name not in self._folded:
            self._folded[name] = self._finish(self._build(name))
        return self._folded[name]

    def _finish(self, net: Lidia) -> Lidia:
        """The inference form of ``net`` for the chosen BatchNorm mode."""
        return net.use_batch_statistics() if self.bn == "batch" else net.fold_batchnorm()

    def _build(self, name: str) -> Lidia:
        """A fresh trainable copy of the shipped net ``name`` on this device (adaptation changes its copy)."""
        if name not in self._loaded:  # read and verified once
            self._loaded[name] = load_net(name, lambda config: Lidia(LidiaConfig.from_dict(config)), self.weights_dir,
                                          frozen=False)
        return copy.deepcopy(self._loaded[name]).to(self.device).eval()

    def to(self, device: str | torch.device) -> "LidiaRestorer":
        """Run on ``device``; networks are rebuilt there on first use."""
        if torch.device(device) != self.device:
            self.device = torch.device(device)
            self._folded = {}
        return self

    def prepare(
        self, sample: torch.Tensor, operator: Operator, *, generator: torch.Generator | None = None
    ) -> tuple["LidiaRestorer", Operator]:
        """Fix, for all tiles of an image, what LIDIA would otherwise decide per call.

        The noise level is estimated once, the image mean the network input is
        centred on is taken from ``sample`` (a per-tile mean would make tiles
        disagree), and the network is adapted once when adaptation is on.
        """
        self.check(sample, operator)
        _, operator = super().prepare(sample, operator, generator=generator)
        prepared = copy.copy(self)
        prepared._folded = dict(self._folded)
        prepared.centre = (sample.float() * 2 - 1).mean(dim=(2, 3), keepdim=True).to(self.device)
        if self.adapt:
            color = "gray" if sample.shape[1] == 1 else "color"
            name, net_sigma = self.pick_model(color, operator.sigma * 255)
            net = self._adapted(self._build(name), sample, operator.sigma, net_sigma / 255, generator)
            prepared._folded[name] = self._finish(net)
            prepared.adapt = None  # already adapted: tiles use this network as it is
        return prepared, operator

    # ---- restore --------------------------------------------------------
    def _restore(self, y: torch.Tensor, operator: Operator, *, generator: torch.Generator | None) -> Restoration:
        if min(y.shape[-2:]) < MIN_SIDE:
            raise RestoreError(f"image {y.shape[-2]}x{y.shape[-1]} is smaller than LIDIA's minimum {MIN_SIDE}x{MIN_SIDE}")
        if operator.sigma > 0 and not self.adapt and self.bn == "eval":
            # One known noise level and one network: the whole batch in one pass
            # (not with batch statistics: an image's output would depend on the others).
            image, info = self._restore_one(y, operator.sigma, generator)
            return Restoration(image=image, info=info)
        outputs, infos = [], []
        for b in range(y.shape[0]):
            image, info = self._restore_one(y[b : b + 1], operator.sigma, generator)
            outputs.append(image)
            infos.append(info)
        info = infos[0] if len(infos) == 1 else {"per_image": infos}
        return Restoration(image=torch.cat(outputs), info=info)

    def _restore_one(self, y: torch.Tensor, sigma: float, generator: torch.Generator | None) -> tuple[torch.Tensor, dict]:
        estimated = sigma <= 0
        if estimated:
            sigma = estimate_image_sigma(y)
        sigma_255 = sigma * 255
        if not math.isfinite(sigma_255) or sigma_255 <= 0:
            raise RestoreError(f"noise level must be positive, got sigma={sigma_255:.3g}")
        color = "gray" if y.shape[1] == 1 else "color"
        name, net_sigma = self.pick_model(color, sigma_255)
        if self.adapt:
            net = self._finish(self._adapted(self._build(name), y, sigma, net_sigma / 255, generator))
        else:
            net = self._inference_net(name)
        image = self._denoise(net, y, sigma, net_sigma / 255)
        info = {"sigma": round(sigma_255, 2), "sigma_estimated": estimated, "weights": name, "adapt": self.adapt or "none"}
        return image, info

    def _adapted(self, net: Lidia, y: torch.Tensor, sigma: float, net_sigma: float, generator) -> Lidia:
        if self.adapt == "internal":
            first = net.__class__(net.cfg)
            first.load_state_dict(net.state_dict())
            first = self._finish(first.to(self.device).eval())
            target = self._denoise(first, y, sigma, net_sigma).clamp(0, 1)
            target = torch.round(target * 255) / 255  # the paper adapts on the 8-bit estimate
        else:
            target = self.adapt_ref.to(self.device)
            if target.shape[1] != y.shape[1]:
                raise RestoreError(f"--adapt-ref has {target.shape[1]} channels, the image has {y.shape[1]}")
        # Seeded by default so that the same call gives the same image.
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return adapt(net, target, net_sigma, self.adapt_settings, generator)

    @torch.inference_mode()
    def _denoise(self, net: Lidia, y: torch.Tensor, sigma: float, net_sigma: float) -> torch.Tensor:
        """Run ``net`` on y in model units: [-1, 1], mean removed, noise rescaled to the net's."""
        y = y.to(self.device, torch.float32)
        mean = self.centre if self.centre is not None else (y * 2 - 1).mean(dim=(2, 3), keepdim=True)
        gain = net_sigma / sigma
        ym = ((y * 2 - 1) - mean) * gain
        run = lambda t: net(t, chunk=self.chunk)  # noqa: E731
        out = run(ym) if max(ym.shape[-2:]) <= self.single_pass else tiled_apply(run, ym, tile=self.tile, halo=HALO)
        return ((out / gain + mean + 1) / 2).cpu()
