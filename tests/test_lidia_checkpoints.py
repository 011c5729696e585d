"""The LIDIA authors' checkpoints: exact conversion, the converted folder, and refused files.

The checkpoints here are built in the authors' layout (grishavak/LIDIA-denoiser,
code/modules.py: key names and shapes of ``PatchDenoiseNet``) with random
values and saved as they save theirs, ``torch.save({"state_dict": ...})``.
"""
from __future__ import annotations

import json
import pathlib

import pytest
import torch
from typer.testing import CliRunner

import restore
from restore.cli import app
from restore.errors import RestoreError
from restore.io import write_image
from restore.nets.lidia import Lidia, LidiaConfig
from restore.operators.denoise import Denoise
from restore.restorers.lidia_checkpoint import convert_checkpoint, read_checkpoint

SIDE = 40
BN = ("weight", "bias", "running_mean", "running_var")


def _ver_hor(gen, ver_in, ver_out, hor_in, hor_out):
    """The tensors of their VerHorMat: Linear over patch values, Linear over neighbours, a hor_out x ver_out bias."""
    return {"ver.weight": torch.randn(ver_out, ver_in, generator=gen) / ver_in**0.5,
            "hor.weight": torch.randn(hor_out, hor_in, generator=gen) / hor_in**0.5,
            "b": torch.randn(hor_out, ver_out, generator=gen) * 0.1}


def _batchnorm(gen, c):
    return {"weight": 1 + 0.1 * torch.randn(c, generator=gen), "bias": 0.1 * torch.randn(c, generator=gen),
            "running_mean": 0.1 * torch.randn(c, generator=gen), "running_var": 0.5 + torch.rand(c, generator=gen),
            "num_batches_tracked": torch.tensor(1000)}


def authors_state(rgb: bool, small: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ``PatchDenoiseNet`` state dict as their code names and shapes it."""
    gen = torch.Generator().manual_seed(seed)
    n, v = (75, 80) if rgb else (49, 64)
    state: dict[str, torch.Tensor] = {}

    def put(prefix, tensors):
        state.update({prefix + key: value for key, value in tensors.items()})

    for i in (0, 1):
        part1 = f"separable_fc_net.sep_part1_s{i}."
        put(part1 + "ver_hor_bn_re0.ver_hor.", _ver_hor(gen, n, v, 14, 14))
        if not small:
            state[part1 + "a"] = torch.rand(1, generator=gen)
            put(part1 + "ver_hor_bn_re1.ver_hor.", _ver_hor(gen, v, v, 14, 14))
            put(part1 + "ver_hor_bn_re1.bn.", _batchnorm(gen, 14))
        put(f"separable_fc_net.ver_hor_agg{i}_pre.", _ver_hor(gen, v, n, 14, 1))
        put(f"separable_fc_net.ver_hor_bn_re_agg{i}_post.ver_hor.", _ver_hor(gen, n, v, 1, 14))
        for j in range(6):
            state[f"weights_net{i}.fc{j}.weight"] = torch.randn(14, 14, generator=gen) / 14**0.5
            put(f"weights_net{i}.bn{j}.", _batchnorm(gen, 14))
        state[f"weights_net{i}.fc_out.weight"] = torch.randn(14, 14, generator=gen) / 14**0.5
        # Neighbour weights away from 0, as trained ones are: scale 1 divides by the first one.
        state[f"weights_net{i}.fc_out.bias"] = 1 + 0.1 * torch.randn(14, generator=gen)
        state[f"alpha{i}"] = torch.rand(1, generator=gen)
    part2 = "separable_fc_net.sep_part2."
    put(part2 + "ver_hor_bn_re2.ver_hor.", _ver_hor(gen, v, v, 56, 56))
    put(part2 + "ver_hor_bn_re2.bn.", _batchnorm(gen, 56))
    if not small:
        state[part2 + "a"] = torch.rand(1, generator=gen)
        put(part2 + "ver_hor_bn_re3.ver_hor.", _ver_hor(gen, v, v, 56, 56))
        put(part2 + "ver_hor_bn_re3.bn.", _batchnorm(gen, 56))
    put(part2 + "ver_hor_out.", _ver_hor(gen, v, n, 56, 1))
    k1 = torch.tensor([0.25, 0.5, 0.25])
    state["separable_fc_net.agg1.bilinear_conv.weight"] = (k1[:, None] * k1).view(1, 1, 3, 3)
    state["beta"] = torch.rand(1, generator=gen)
    return state


def ours_from(state: dict[str, torch.Tensor], rgb: bool, small: bool) -> Lidia:
    """Our net with the same numbers, set layer by layer (independently of the converter's key table)."""
    net = Lidia(LidiaConfig.color(light=small) if rgb else LidiaConfig.gray(light=small))
    g = lambda key: state[key].clone()  # noqa: E731

    def separable(layer, prefix, bn=None):
        layer.pix.data = g(prefix + "ver.weight").t().contiguous()
        layer.nb.data = g(prefix + "hor.weight")
        layer.bias.data = g(prefix + "b").unsqueeze(1)
        for name in BN if bn else ():
            getattr(layer.bn, name).data = g(bn + name)

    for i, branch in enumerate(net.branches):
        part1 = f"separable_fc_net.sep_part1_s{i}."
        separable(branch.first, part1 + "ver_hor_bn_re0.ver_hor.")
        if not small:
            branch.second.a.data = g(part1 + "a")[0]
            separable(branch.second.layer, part1 + "ver_hor_bn_re1.ver_hor.", part1 + "ver_hor_bn_re1.bn.")
        separable(branch.to_patch, f"separable_fc_net.ver_hor_agg{i}_pre.")
        separable(branch.from_patch, f"separable_fc_net.ver_hor_bn_re_agg{i}_post.ver_hor.")
        mlp = branch.weights.mlp
        for j in range(6):
            mlp[3 * j].weight.data = g(f"weights_net{i}.fc{j}.weight")
            for name in BN:
                getattr(mlp[3 * j + 1], name).data = g(f"weights_net{i}.bn{j}.{name}")
        mlp[18].weight.data, mlp[18].bias.data = g(f"weights_net{i}.fc_out.weight"), g(f"weights_net{i}.fc_out.bias")
        branch.weights.alpha.data = g(f"alpha{i}")[0]
    part2 = "separable_fc_net.sep_part2."
    separable(net.joint, part2 + "ver_hor_bn_re2.ver_hor.", part2 + "ver_hor_bn_re2.bn.")
    if not small:
        net.joint2.a.data = g(part2 + "a")[0]
        separable(net.joint2.layer, part2 + "ver_hor_bn_re3.ver_hor.", part2 + "ver_hor_bn_re3.bn.")
    separable(net.out, part2 + "ver_hor_out.")
    net.beta.data = g("beta")[0]
    return net.eval()


def save_authors(path: pathlib.Path, state: dict) -> pathlib.Path:
    torch.save({"state_dict": state}, path)
    return path


def noisy(channels: int, seed: int = 1) -> torch.Tensor:
    """A smooth test image plus noise of sigma 25/255, in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0.2, 0.8, SIDE)
    clean = (ramp[None, :] * ramp[:, None]).expand(1, channels, SIDE, SIDE)
    return (clean + 25 / 255 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)


VARIANTS = [pytest.param(False, False, id="full-gray"), pytest.param(True, True, id="small-color"),
            pytest.param(False, True, id="small-gray"), pytest.param(True, False, id="full-color")]


@pytest.mark.parametrize("rgb,small", VARIANTS)
def test_conversion_is_exact(tmp_path, rgb, small):
    path = save_authors(tmp_path / f"model_state_sigma_25_{'c' if rgb else 'bw'}.pt", authors_state(rgb, small))
    converted = read_checkpoint(path)
    assert (converted.config.channels, converted.config.light, converted.sigma) == (3 if rgb else 1, small, 25.0)
    y = noisy(3 if rgb else 1) * 2 - 1
    with torch.no_grad():
        got = converted.build()(y)
        want = ours_from(authors_state(rgb, small), rgb, small)(y)
        other = ours_from(authors_state(rgb, small, seed=5), rgb, small)(y)
    assert torch.isfinite(got).all()
    assert (got - want).abs().max() < 1e-5
    assert (other - want).abs().max() > 1e-3  # the comparison sees a change of weights


def test_parameter_counts_match_the_papers():
    """The layout built here has the authors' parameter counts (learned tensors, BatchNorm statistics aside)."""
    def learned(state):
        return sum(t.numel() for k, t in state.items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked", "bilinear_conv.weight")))
    assert learned(authors_state(rgb=False, small=False)) == 61_589
    assert learned(authors_state(rgb=False, small=True)) == 40_226
    assert learned(authors_state(rgb=True, small=False)) == 94_067


def test_restorer_runs_the_checkpoint_and_the_converted_folder_alike(tmp_path):
    path = save_authors(tmp_path / "model_state_small_sigma_25_bw.pt", authors_state(rgb=False, small=True))
    y = noisy(1)
    from_file = restore.load("lidia", weights=path).restore(y, Denoise(25 / 255))
    assert from_file.info["weights"] == "lidia-small-gray-s25"
    written = convert_checkpoint(path, tmp_path / "converted")
    assert written.name == "lidia-small-gray-s25.safetensors"
    manifest = json.loads((tmp_path / "converted" / "manifest.json").read_text())
    assert manifest["models"]["lidia-small-gray-s25"]["sigma"] == 25.0
    assert set(manifest["files"]) == {"lidia-small-gray-s25.safetensors", "lidia-small-gray-s25.json"}
    from_dir = restore.load("lidia", weights=tmp_path / "converted").restore(y, Denoise(25 / 255))
    assert torch.equal(from_file.image, from_dir.image)
    with pytest.raises(RestoreError, match="exists"):
        convert_checkpoint(path, tmp_path / "converted")
    full = save_authors(tmp_path / "model_state_sigma_25_bw.pt", authors_state(rgb=False, small=False))
    with pytest.raises(RestoreError, match="already holds lidia-small-gray-s25 .* another folder"):
        convert_checkpoint(full, tmp_path / "converted")
    with pytest.raises(RestoreError, match="no LIDIA weights for color"):
        restore.load("lidia", weights=path).restore(noisy(3), Denoise(25 / 255))


def test_blind_checkpoint_is_not_rescaled_inside_its_range(tmp_path):
    path = save_authors(tmp_path / "model_state_sigma_blind_bw.pt", authors_state(rgb=False, small=True))
    restorer = restore.load("lidia", weights=path)
    assert restorer.pick_model("gray", 20.0) == ("lidia-small-gray-blind", 20.0)
    assert restorer.pick_model("gray", 50.0) == ("lidia-small-gray-blind", 30.0)


def test_cli_convert_weights_round_trip(tmp_path):
    path = save_authors(tmp_path / "mine.pt", authors_state(rgb=True, small=False))
    out = tmp_path / "w"
    runner = CliRunner()
    result = runner.invoke(app, ["convert-weights", "lidia", str(path), "-o", str(out)])
    assert result.exit_code == 1 and "--sigma" in result.output  # the name does not say its noise level
    result = runner.invoke(app, ["convert-weights", "lidia", str(path), "--sigma", "25", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "lidia-full-color-s25.safetensors").is_file()
    image = tmp_path / "noisy.png"
    write_image(image, noisy(3), bit_depth=8)
    result = runner.invoke(app, ["denoise", str(image), "--sigma", "25", "--model", "lidia", "--weights", str(out),
                                 "-o", str(tmp_path / "clean.png"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "clean.png").is_file()


class _Touch:
    """An object whose unpickling would create a file: proof that a refused file is not unpickled."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_pickled_object_is_refused_with_one_line(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model_state_sigma_25_bw.pt"
    torch.save({"state_dict": authors_state(False, True), "extra": _Touch(marker)}, path)
    write_image(tmp_path / "any.png", noisy(1), bit_depth=8)
    result = CliRunner().invoke(app, ["denoise", str(tmp_path / "any.png"), "--model", "lidia", "--weights", str(path),
                                      "--sigma", "25", "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "refused" in lines[0], result.output
    assert not marker.exists()
    result = CliRunner().invoke(app, ["convert-weights", "lidia", str(path), "-o", str(tmp_path / "w")])
    assert result.exit_code == 1 and "refused" in result.output and len(result.output.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "w").exists()


def test_wrong_layouts_are_refused_naming_what_is_wrong(tmp_path):
    def refused(obj, name="model_state_sigma_25_bw.pt"):
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(RestoreError) as info:
            read_checkpoint(path)
        assert "\n" not in str(info.value)
        return str(info.value)

    state = authors_state(rgb=False, small=False)
    assert "no 'separable_fc_net" in refused({"model": state})
    assert "not the LIDIA authors' dict" in refused([1, 2])
    assert "weights_net1.fc3.weight" in refused({"state_dict": {k: v for k, v in state.items()
                                                                 if k != "weights_net1.fc3.weight"}})
    assert "unexpected 'extra.weight'" in refused({"state_dict": {**state, "extra.weight": torch.zeros(1)}})
    bad = {**state, "separable_fc_net.sep_part2.ver_hor_bn_re2.ver_hor.b": torch.zeros(56, 63)}
    message = refused({"state_dict": bad})
    assert "ver_hor_bn_re2.ver_hor.b' has shape (56, 63), expected (56, 64)" in message
    assert "holds a bytes" in refused(b"not a checkpoint")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(RestoreError, match="cannot read"):
        read_checkpoint(tmp_path / "junk.pt")


def test_checkpoint_adapts_and_runs_through_the_pipeline(tmp_path):
    """Our instance adaptation and the Pipeline run a checkpoint's network."""
    from restore.pipeline import Pipeline
    from restore.restorers.adaptation import AdaptationSettings

    path = save_authors(tmp_path / "model_state_small_sigma_25_bw.pt", authors_state(rgb=False, small=True))
    y = noisy(1)
    plain = restore.load("lidia", weights=path).restore(y, Denoise(25 / 255)).image
    adapted = restore.load("lidia", weights=path, adapt="internal",
                           adapt_settings=AdaptationSettings(steps=2, batch=1, crop=32)).restore(y, Denoise(25 / 255))
    assert adapted.info["adapt"] == "internal" and torch.isfinite(adapted.image).all()
    assert (adapted.image - plain).abs().max() > 0
    restorer = restore.load("lidia", weights=path)
    whole = Pipeline(restorer, Denoise(25 / 255), tile=0).run(y).image
    assert torch.equal(whole, plain)
