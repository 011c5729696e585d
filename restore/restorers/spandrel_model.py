"""Community models (ESRGAN, SwinIR, HAT, DRUNet, SCUNet, NAFNet, ...) that spandrel loads, as a restorer.

``--model spandrel:FILE`` or ``restore.load("spandrel", path=FILE)``. spandrel
is optional (``pip install 'restore[models]'``): it is imported only when a
file is loaded, never by ``import restore``. What the file is, is read from
spandrel's model descriptor: scale, channels, size multiple and fp16/bf16
support. Files are read safely: safetensors as they are, ``.pth``/``.ckpt``
only through ``torch.load(weights_only=True)``, which unpickles tensors and
containers and nothing that could run code.

Tasks follow the model's purpose and scale. An SR model (scale s > 1) inverts
sr by s and nothing else. A scale-1 restoration model inverts denoise and
deblur: spandrel cannot tell which degradation it was trained for (NAFNet
exists as a GoPro deblurrer and as an SIDD denoiser), so the command the user
runs names it, and the model runs blind (the operator's sigma or kernel does
not reach it). Denoisers that take a noise-level map (DRUNet, FDnCNN; spandrel
feeds them a fixed 15/255) do denoise only, and get the operator's sigma
(estimated on the image when not given). Inpainting models (they take a mask) and face models (they take
aligned face crops, not tiles) are refused when loaded.

The halo is measured when the file is loaded: an impulse added at the centre
of a textured probe moves output pixels up to some distance; the halo is
that reach (plus a margin), so that tiles see all the context that matters.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from restore.errors import RestoreError
from restore.operators.base import Operator
from restore.operators.blur import Blur
from restore.operators.compose import Compose
from restore.operators.decimate import Decimate
from restore.operators.denoise import Denoise
from restore.operators.downsample import Downsample
from restore.options import option
from restore.restorers.base import Restoration, Restorer, register
from restore.tasks import task_of

INSTALL_HINT = "spandrel is not installed: pip install 'restore[models]'"
PICKLE_SUFFIXES = (".pth", ".ckpt", ".pt", ".bin")
# The probe's half side: reaches beyond it are treated as global (capped there).
MAX_HALO = 64
# An output change below this (a 16-bit step is 1.5e-5) from the probe's impulse counts as no reach.
REACH_TOLERANCE = 1e-5
PROBE_IMPULSE = 0.25
HALO_MARGIN = 2
BLIND_TASKS = ("denoise", "deblur")
# Architectures whose first layer reads a noise-level map as one more channel.
NOISE_MAP_ARCHITECTURES = {"DRUNet": None, "DnCNN": "FDnCNN"}  # id -> the model.mode that has one (None: always)


@dataclass(frozen=True)
class SpandrelOptions:
    path: Path | None = option(None, "the model file spandrel reads (.safetensors; .pth/.ckpt read weights-only)")
    halo: int | None = option(None, "context pixels around each tile (default: measured on the model when loaded)",
                              low=0, high=512)


@register("spandrel")
class SpandrelRestorer(Restorer):
    """Any image-to-image model spandrel recognises, run blind on the tiles the pipeline gives it."""

    name = "spandrel"
    # Compose: the satellite sensor's blur + decimation (an sr operator); check() narrows it to the file's task.
    operators = (Denoise, Blur, Downsample, Decimate, Compose)
    description = "a community model loaded by spandrel (--model spandrel:FILE): SR x its scale, or blind denoise/deblur"
    Options = SpandrelOptions
    path_option = "path"  # "spandrel:FILE" names the model and sets path=FILE

    def setup(self) -> None:
        self.model = None
        self.scale = 1
        self.architecture = ""
        self.one_by_one = False
        self.noise_map = False
        if self.options.path is None:
            return  # restore.load("spandrel") builds; restoring asks for the file
        self.model = load_descriptor(Path(self.options.path)).to(self.device).eval()
        self.name = f"spandrel:{Path(self.options.path).name}"
        self.architecture = self.model.architecture.name
        self.scale = int(self.model.scale)
        self.channels = (int(self.model.input_channels),)
        self.tile_multiple = int(self.model.size_requirements.multiple_of)
        self.noise_map = takes_noise_map(self.model)
        self.measured_halo = measure_halo(self.model) if self.options.halo is None else None
        # A multiple of the size multiple: a strided net (a U-Net) is shift-variant, so tiles must start on its grid.
        halo = self.options.halo if self.options.halo is not None else self.measured_halo
        self.halo = math.ceil(halo / self.tile_multiple) * self.tile_multiple

    def to(self, device: str | torch.device) -> "SpandrelRestorer":
        super().to(device)
        if self.model is not None:
            self.model = self.model.to(self.device)
        return self

    def kind(self) -> str:
        """The model in words: "ESRGAN, SR x4" or "DnCNN, restoration x1"."""
        what = "SR" if self.scale > 1 else "denoiser with a noise level" if self.noise_map else "restoration"
        return f"{self.architecture}, {what} x{self.scale}"

    def check(self, y: torch.Tensor, operator: Operator) -> None:
        """The base checks, then the file's own task: SR by its scale only, or blind denoise/deblur at scale 1."""
        if self.model is None:
            raise RestoreError("model 'spandrel' needs a model file: --model spandrel:FILE or "
                               "restore.load('spandrel', path=FILE)")
        super().check(y, operator)
        task = task_of(operator)
        factor = round(1 / operator.scale)
        if self.scale > 1 and (task != "sr" or factor != self.scale):
            asked = f"sr x{factor}" if task == "sr" else str(task)
            raise RestoreError(f"model '{self.name}' ({self.kind()}) cannot invert {asked}: it does sr x{self.scale} "
                               f"only (restore sr --scale {self.scale})")
        if self.scale == 1 and task not in BLIND_TASKS:
            raise RestoreError(f"model '{self.name}' ({self.kind()}) cannot invert {task} x{factor}: a scale-1 model "
                               f"does {' or '.join(BLIND_TASKS)} (blind, at the input's size)")
        if self.noise_map and task != "denoise":
            raise RestoreError(f"model '{self.name}' ({self.kind()}) cannot invert {task}: it is a denoiser that "
                               f"takes the noise level (restore denoise)")

    def prepare(self, sample, operator, *, generator=None):
        """A noise-level map needs the image's sigma (estimated once when not given); a blind model needs nothing."""
        if self.noise_map:
            return super().prepare(sample, operator, generator=generator)
        return self, operator

    def _restore(self, y: torch.Tensor, operator: Operator, *, generator) -> Restoration:
        self._check_precision(y.device.type)
        if self.noise_map:
            out = self._call_with_noise_map(y.to(self.model.dtype), float(getattr(operator, "sigma", 0.0)))
        else:
            out = self._call(y.to(self.model.dtype))
        # clone(): the descriptor runs in inference mode, and its tensors refuse in-place updates outside it.
        return Restoration(image=out.float().clone(), info={"model": self.name, "architecture": self.architecture,
                                                            "blind": not self.noise_map})

    def _call(self, y: torch.Tensor) -> torch.Tensor:
        """The descriptor on a batch (it pads to the size multiple, crops back, clamps to [0, 1]).

        Some architectures' calls build per-image inputs (DRUNet's noise map is 1 x 1 x H x W)
        and fail on a batch: those run tile by tile from then on.
        """
        if y.shape[0] > 1 and not self.one_by_one:
            try:
                return self.model(y)
            except RuntimeError as error:
                if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
                    raise
                self.one_by_one = True
        return torch.cat([self.model(y[b : b + 1]) for b in range(y.shape[0])])

    def _call_with_noise_map(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """The module on ``y`` and a map of the operator's ``sigma`` (spandrel's own call fixes it at 15/255)."""
        multiple = self.tile_multiple
        h, w = y.shape[-2:]
        # Replicated, not reflected: a small tile may be narrower than its padding.
        padded = F.pad(y, (0, -w % multiple, 0, -h % multiple), mode="replicate")
        level = torch.full_like(padded[:, :1], sigma)
        with torch.inference_mode():
            out = self.model.model(torch.cat([padded, level], dim=1))
        return out[..., :h, :w].clamp(0, 1)

    def _check_precision(self, device_type: str) -> None:
        """Refuse the pipeline's reduced precision where spandrel says the model does not support it."""
        if not torch.is_autocast_enabled(device_type):
            return
        dtype = torch.get_autocast_dtype(device_type)
        supported = {torch.float16: self.model.supports_half, torch.bfloat16: self.model.supports_bfloat16}
        if not supported.get(dtype, True):
            name = "fp16" if dtype == torch.float16 else "bf16"
            other = " or bf16" if dtype == torch.float16 and self.model.supports_bfloat16 else ""
            raise RestoreError(f"model '{self.name}' ({self.architecture}) does not support {name} (spandrel's "
                               f"descriptor says so): use --precision fp32{other}")


def load_descriptor(path: Path):
    """spandrel's descriptor of the image model in ``path``, or a one-line error naming the file."""
    try:
        import spandrel
    except ImportError:
        raise RestoreError(INSTALL_HINT) from None
    state = spandrel.canonicalize_state_dict(read_state_dict(path))
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except spandrel.UnsupportedModelError:
        raise RestoreError(f"{path}: spandrel does not recognise this model's architecture") from None
    except Exception as error:  # an architecture that detected the keys but could not build from them
        raise RestoreError(f"{path}: spandrel could not build the model ({type(error).__name__}: "
                           f"{_first_line(error)})") from None
    _check_kind(descriptor, path)
    return descriptor


def read_state_dict(path: Path) -> dict:
    """The tensors of a safetensors file, or of a pickle read weights-only (refused if it holds anything else)."""
    if not path.is_file():
        raise RestoreError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise RestoreError(f"{path}: not a readable safetensors file ({_first_line(error)})") from None
    if suffix not in PICKLE_SUFFIXES:
        raise RestoreError(f"{path}: unsupported model file type '{suffix}'; expected .safetensors "
                           f"(preferred) or {', '.join(PICKLE_SUFFIXES)} read weights-only")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise RestoreError(f"{path}: refused: the pickle holds objects other than tensors, which could run code "
                           f"when loaded; convert it to .safetensors where you trust it") from None
    except Exception as error:
        raise RestoreError(f"{path}: not a readable checkpoint ({type(error).__name__}: {_first_line(error)})") from None
    if not isinstance(state, dict):
        raise RestoreError(f"{path}: expected a state dict (names -> tensors), got a {type(state).__name__}")
    return state


def _check_kind(descriptor, path: Path) -> None:
    """Refuse the models the pipeline cannot run as a tile-wise image restorer, saying why."""
    import spandrel

    arch = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise RestoreError(f"{path}: {arch} is a {descriptor.purpose} model (it takes a mask); restore runs "
                           f"image-to-image models only")
    if descriptor.purpose == "FaceSR":
        raise RestoreError(f"{path}: {arch} is a face restoration model (it takes aligned face crops, not tiles)")
    if descriptor.input_channels != descriptor.output_channels:
        raise RestoreError(f"{path}: {arch} takes {descriptor.input_channels} channels and gives "
                           f"{descriptor.output_channels}; restore needs as many out as in")


def takes_noise_map(descriptor) -> bool:
    """Whether the model reads a noise-level map besides the image (DRUNet; DnCNN in its FDnCNN mode)."""
    arch = str(descriptor.architecture.id)
    if arch not in NOISE_MAP_ARCHITECTURES:
        return False
    mode = NOISE_MAP_ARCHITECTURES[arch]
    return mode is None or getattr(descriptor.model, "mode", None) == mode


def measure_halo(descriptor) -> int:
    """How far (input pixels) one input pixel moves the output, measured on a textured probe, plus a margin.

    Models whose reach exceeds the probe (global attention or pooling) get
    ``MAX_HALO``: tiles then agree up to what lies beyond it.
    """
    side = _probe_side(descriptor)
    channels, scale = int(descriptor.input_channels), int(descriptor.scale)
    generator = torch.Generator().manual_seed(0)
    texture = F.avg_pool2d(torch.rand(1, channels, side + 2, side + 2, generator=generator), 3, stride=1)
    probe = 0.35 + 0.3 * texture  # mid-range, so that the model's clamping to [0, 1] hides nothing
    centre = side // 2
    moved = probe.clone()
    moved[..., centre, centre] += PROBE_IMPULSE
    # The module through the architecture's own call (a noise map appended, ...) but without the descriptor's
    # clamping, so that saturated outputs do not hide the reach.
    call = getattr(descriptor, "_call_fn", None) or (lambda module, image: module(image))
    device, dtype = descriptor.device, descriptor.dtype
    with torch.inference_mode():
        outputs = [call(descriptor.model, x.to(device, dtype)).float() for x in (moved, probe)]
    change = (outputs[0] - outputs[1]).abs().amax(1)[0].cpu()
    rows, cols = torch.nonzero(change > REACH_TOLERANCE, as_tuple=True)
    if rows.numel() == 0:
        return HALO_MARGIN
    middle = centre * scale + (scale - 1) / 2  # the centre pixel's middle at output resolution
    reach = math.ceil(float(torch.maximum((rows - middle).abs(), (cols - middle).abs()).max()) / scale)
    return min(MAX_HALO, reach + HALO_MARGIN)


def _probe_side(descriptor) -> int:
    need = descriptor.size_requirements
    side = max(2 * MAX_HALO + 1, need.minimum)
    return math.ceil(side / need.multiple_of) * need.multiple_of


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
