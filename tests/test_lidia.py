"""LIDIA: architecture facts, exactness of its pieces, quality floors, bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import restore
from restore.nets.lidia import Lidia, LidiaConfig
from restore.nets.lidia_layers import Separable
from restore.nets.patch_search import knn_search
from restore.operators import Blur, Denoise, gaussian_kernel

from conftest import psnr


@pytest.mark.parametrize(
    "cfg, expected",
    [(LidiaConfig.gray(light=False), 61_589), (LidiaConfig.gray(light=True), 40_226), (LidiaConfig.color(light=False), 94_067)],
)
def test_parameter_counts_match_the_paper(cfg, expected):
    assert sum(p.numel() for p in Lidia(cfg).parameters()) == expected


def test_knn_search_matches_brute_force():
    torch.manual_seed(0)
    p, w, k = 5, 4, 6
    img = torch.rand(2, 1, 12 + 2 * w + p - 1, 15 + 2 * w + p - 1)
    dist, index = knn_search(img, p, w, k)
    table = F.unfold(img, p)  # B x p*p x L
    width = img.shape[-1] - (p - 1)
    for b, r, c in [(0, 0, 0), (1, 7, 11), (0, 11, 14)]:
        centre = table[b, :, (r + w) * width + (c + w)]
        cands = sorted(
            (float(((table[b, :, (r + w + dy) * width + c + w + dx] - centre) ** 2).sum()), (r + w + dy) * width + c + w + dx)
            for dy in range(-w, w + 1)
            for dx in range(-w, w + 1)
        )
        assert index[b, :, r, c].tolist() == [i for _, i in cands[:k]]
        assert torch.allclose(dist[b, :, r, c], torch.tensor([d for d, _ in cands[:k]]), atol=1e-5)


def _plain_knn(img, p, w, k, dil):
    """The search as one top-k over every offset's distance (conv box sums), the order it is defined by."""
    pad, span, side = w * dil, (p - 1) * dil, 2 * w + 1
    hq, wq = img.shape[-2] - 2 * pad - span, img.shape[-1] - 2 * pad - span
    centre = img[:, :, pad : pad + hq + span, pad : pad + wq + span]
    ones = lambda shape: img.new_ones(shape)  # noqa: E731
    dist = []
    for dy in range(-w, w + 1):
        for dx in range(-w, w + 1):
            sq = (img[:, :, pad + dy * dil :, pad + dx * dil :][..., : hq + span, : wq + span] - centre) ** 2
            sq = F.conv2d(F.conv2d(sq, ones((1, 1, p, 1)), dilation=(dil, 1)), ones((1, 1, 1, p)), dilation=(1, dil))
            dist.append(sq[:, 0])
    dist = torch.stack(dist)
    dist[side * side // 2] = -1.0
    best, pos = torch.topk(dist, k, dim=0, largest=False, sorted=True)
    best[0] = 0.0
    row = torch.arange(hq).view(1, 1, -1, 1) + (pos // side) * dil
    col = torch.arange(wq).view(1, 1, 1, -1) + (pos % side) * dil
    return best.transpose(0, 1), (row * (img.shape[-1] - span) + col).transpose(0, 1)


@pytest.mark.parametrize("dil", [1, 2])
def test_knn_search_equals_the_plain_top_k_exactly(camera, dil):
    """Grouped selection = one top-k over all candidates, to the bit, also where reflect padding makes exact mirror ties."""
    y = camera[..., 20:60, 30:80] * 2 - 1
    y = y + 0.2 * torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    p, w, k = 7, 14, 14
    s = (p - 1) * dil // 2 + (p - 1)
    img = F.pad(F.pad(y, [s] * 4, mode="reflect"), [w * dil] * 4, value=-1.0)
    ref_d, ref_i = _plain_knn(img, p, w, k, dil)
    d, i = knn_search(img, p, w, k, dil, budget=1 << 18)  # several bands
    assert torch.equal(d, ref_d) and torch.equal(i, ref_i)
    assert (ref_d[:, 1:] == ref_d[:, :-1]).any()  # the crop does have ties


@pytest.mark.parametrize("v_in, v_out, k_in, k_out", [(49, 64, 14, 14), (64, 49, 14, 1), (49, 64, 1, 14), (64, 64, 56, 56)])
def test_separable_layer_is_its_formula_in_either_product_order(v_in, v_out, k_in, k_out):
    """Whichever order the layer picks, it computes relu(W_nb @ x @ W_pix + bias), also from row blocks."""
    torch.manual_seed(0)
    layer = Separable(v_in, v_out, k_in, k_out)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(k_in, 37, v_in)
    expected = torch.relu(torch.einsum("ok,knv,vw->onw", layer.nb, x, layer.pix) + layer.bias)
    blocks = list(x.split(max(1, k_in // 4)))
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            assert torch.allclose(layer(x), expected, atol=1e-4)
            assert torch.allclose(layer(blocks), expected, atol=1e-4)


def test_batchnorm_folding_is_exact():
    torch.manual_seed(0)
    net = Lidia(LidiaConfig.gray()).train()
    with torch.no_grad():  # move the running statistics away from their init
        net(torch.rand(2, 1, 24, 24) * 2 - 1)
    net.eval()
    y = torch.rand(1, 1, 20, 22) * 2 - 1
    with torch.inference_mode():
        ref = net(y)
        folded = net.fold_batchnorm()(y)
    assert torch.allclose(ref, folded, rtol=1e-4, atol=1e-5)


def test_chunked_forward_equals_one_pass():
    torch.manual_seed(0)
    net = Lidia(LidiaConfig.color()).eval()
    y = torch.rand(1, 3, 18, 21) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(net(y), net(y, chunk=100), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "cfg",
    [LidiaConfig.gray(), LidiaConfig.color(), LidiaConfig.gray(light=False),
     LidiaConfig(channels=1, patch=7, width=64, smooth_scale1=False)],
    ids=["gray", "color", "gray-full", "gray-unsmoothed"],
)
def test_streamed_inference_equals_the_stored_forward(cfg):
    """The two-pass inference forward (projected tables, small chunks) = the forward training uses."""
    torch.manual_seed(0)
    net = Lidia(cfg).train()
    with torch.no_grad():  # running statistics away from their init, so eval BatchNorm does something
        net(torch.rand(2, cfg.channels, 24, 24) * 2 - 1)
    net.eval()
    y = torch.rand(2, cfg.channels, 19, 23) * 2 - 1
    with torch.inference_mode():
        ref = net.forward_stored(y)
        for chunk in (7, 256, 10**6):  # a chunk smaller than a row, a partial last chunk, one chunk
            assert torch.allclose(net(y, chunk=chunk), ref, rtol=1e-4, atol=1e-5)
        threads = torch.get_num_threads()
        try:  # chunks dealt to 1 or 3 threads (each with its own partial fold images)
            for n in (1, 3):
                torch.set_num_threads(n)
                assert torch.allclose(net(y, chunk=50), ref, rtol=1e-4, atol=1e-5)
        finally:
            torch.set_num_threads(threads)
        assert torch.allclose(net.fold_batchnorm()(y), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fixture, floor", [("camera", 6.0), ("astronaut", 6.0)])
def test_lidia_denoises_real_images(request, fixture, floor):
    x = request.getfixturevalue(fixture)
    op = Denoise(sigma=25 / 255)
    y = op.measure(x, generator=torch.Generator().manual_seed(0))
    out = restore.load("lidia").restore(y, op)
    assert out.image.shape == x.shape
    assert psnr(out.image.clamp(0, 1), x) - psnr(y, x) > floor


def test_bf16_fast_mode_keeps_quality(camera):
    """The bf16 mode (``--precision bf16``) may cost at most a few hundredths of a dB."""
    x = camera[..., :128, :128]
    op = Denoise(sigma=25 / 255)
    y = op.measure(x, generator=torch.Generator().manual_seed(0))
    den = restore.load("lidia")
    full = den.restore(y, op).image
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = den.restore(y, op).image.float()
    assert abs(psnr(fast.clamp(0, 1), x) - psnr(full.clamp(0, 1), x)) < 0.05
    assert not torch.equal(fast, full)  # autocast did reach the network


def test_blind_mode_estimates_sigma_and_reports_it(camera):
    y = Denoise(sigma=25 / 255).measure(camera, generator=torch.Generator().manual_seed(1))
    out = restore.load("lidia").restore(y, Denoise(sigma=0.0))
    assert out.info["sigma_estimated"] is True
    assert 20 < out.info["sigma"] < 30
    assert psnr(out.image.clamp(0, 1), camera) - psnr(y, camera) > 5.0


def test_internal_adaptation_runs_and_keeps_quality(camera):
    camera = camera[..., :64, :64]
    y = Denoise(sigma=50 / 255).measure(camera, generator=torch.Generator().manual_seed(2))
    settings = restore.restorers.adaptation.AdaptationSettings(steps=3, crop=32)
    den = restore.load("lidia", adapt="internal", adapt_settings=settings)
    out = den.restore(y, Denoise(sigma=50 / 255), generator=torch.Generator().manual_seed(0))
    assert out.info["adapt"] == "internal"
    assert psnr(out.image.clamp(0, 1), camera) - psnr(y, camera) > 6.0


def test_refuses_other_tasks_and_channel_counts(camera):
    den = restore.load("lidia")
    with pytest.raises(restore.RestoreError, match="does not support task 'deblur'"):
        den.restore(camera, Blur(gaussian_kernel(1.0)))
    with pytest.raises(restore.RestoreError, match="channels"):
        den.restore(torch.rand(1, 4, 32, 32), Denoise(0.1))
    with pytest.raises(restore.RestoreError, match="smaller than"):
        den.restore(torch.rand(1, 1, 5, 40), Denoise(0.1))
    with pytest.raises(restore.RestoreError, match="unknown model"):
        restore.load("no-such-model")


# ---- alignment with the authors' code (issue 21 item 0) ----------------------------------------


def test_search_images_are_padded_with_minus_one():
    """As in the authors' code, border patches may pick padding (-1) as neighbours."""
    from restore.nets.lidia import OUTSIDE

    assert OUTSIDE == -1.0
    net = Lidia(LidiaConfig.gray()).eval()
    y = torch.rand(1, 1, 20, 22) * 0.2 + 0.5
    s0, s1 = net._scales(y)
    w = net.cfg.window
    assert torch.all(s0.image[..., :w, :] == -1) and torch.all(s0.image[..., :, -w:] == -1)
    assert torch.all(s1.image[..., : 2 * w, :] == -1) and torch.all(s1.image[..., :, -2 * w :] == -1)
    assert torch.all(s0.image[..., w:-w, w:-w] >= 0.5)  # the reflect-padded image inside


def test_centre_variance_feature_is_unbiased_variance_times_n():
    torch.manual_seed(0)
    net = Lidia(LidiaConfig.gray()).eval()
    seen = []
    for br in net.branches:
        br.weights.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    scales = net._scales(torch.rand(1, 1, 18, 20) * 2 - 1)
    net._neighbour_weights(scales)
    n = net.cfg.n
    for sc, feats in zip(scales, seen):
        centre = sc.table[sc.index[0]]
        dev = centre - centre.mean(dim=1, keepdim=True)
        expected = (dev**2).sum(dim=1) / (n - 1) * n
        assert torch.allclose(feats[:, -1], expected, rtol=1e-5)
        assert torch.equal(feats[:, :-1], sc.dist[:, 1:])


def _direct_fold_unfold(est, first, b, hq, wq, p, d, smooth):
    """Loop-level formula: average the patch estimates into an image (optionally over est / first,
    then [1/4 1/2 1/4] smoothing after a one-pixel reflect pad), cut the patches again (times first)."""
    h, w = hq + (p - 1) * d, wq + (p - 1) * d
    img, cnt = torch.zeros(b, h, w, dtype=torch.float64), torch.zeros(h, w, dtype=torch.float64)
    e = est.double().view(b, hq, wq, p, p)
    f = first.double().view(b, hq, wq) if smooth else torch.ones(b, hq, wq, dtype=torch.float64)
    for i in range(hq):
        for j in range(wq):
            img[:, i : i + (p - 1) * d + 1 : d, j : j + (p - 1) * d + 1 : d] += e[:, i, j] / f[:, i, j, None, None]
            cnt[i : i + (p - 1) * d + 1 : d, j : j + (p - 1) * d + 1 : d] += 1
    img = img / cnt
    if smooth:
        padded = torch.zeros(b, h + 2, w + 2, dtype=torch.float64)
        padded[:, 1:-1, 1:-1] = img
        padded[:, 0, 1:-1], padded[:, -1, 1:-1] = img[:, 1], img[:, -2]
        padded[:, :, 0], padded[:, :, -1] = padded[:, :, 2], padded[:, :, -3]
        k1 = [0.25, 0.5, 0.25]
        img = sum(k1[u] * k1[v] * padded[:, u : u + h, v : v + w] for u in range(3) for v in range(3))
    out = torch.empty(b, hq, wq, p, p, dtype=torch.float64)
    for i in range(hq):
        for j in range(wq):
            out[:, i, j] = img[:, i : i + (p - 1) * d + 1 : d, j : j + (p - 1) * d + 1 : d] * f[:, i, j, None, None]
    return out.view(b * hq * wq, p * p)


@pytest.mark.parametrize("dilation, smooth", [(1, False), (2, False), (2, True)])
def test_aggregation_branch_fold_unfold_is_its_formula(dilation, smooth):
    """Scale 1 (authors' form): est / w0, dilated fold + average, smoothing, unfold, times w0."""
    from restore.nets.lidia import _Scale

    torch.manual_seed(0)
    net = Lidia(LidiaConfig(channels=1, patch=3, width=8))
    b, hq, wq, p = 2, 5, 6, 3
    est = torch.randn(b * hq * wq, p * p)
    first = torch.rand(b * hq * wq) + 0.5
    sc = _Scale(None, None, None, None, dilation)
    got = net._fold_unfold(est, sc, b, hq, wq, first if smooth else None)
    assert torch.allclose(got.double(), _direct_fold_unfold(est, first, b, hq, wq, p, dilation, smooth), atol=1e-6)


def test_forward_uses_scale1_smoothing_with_neighbour0_weight():
    torch.manual_seed(0)
    net = Lidia(LidiaConfig.gray()).eval()
    y = torch.rand(1, 1, 18, 20) * 2 - 1
    calls = []
    orig = net._fold_unfold

    def spy(est, sc, b, hq, wq, first=None):
        calls.append((sc.dilation, first))
        return orig(est, sc, b, hq, wq, first)

    net._fold_unfold = spy
    with torch.inference_mode():  # the stored forward: the streamed one equals it (test above)
        scales = net._scales(y)
        weights, _ = net._neighbour_weights(scales)
        net.forward_stored(y)
    assert calls[0] == (1, None)
    assert calls[1][0] == 2 and torch.equal(calls[1][1], weights[1][:, 0])
    legacy = LidiaConfig.from_dict({k: v for k, v in LidiaConfig.gray().to_dict().items() if k != "smooth_scale1"})
    assert legacy.smooth_scale1 is False and LidiaConfig.gray().smooth_scale1 is True


# ---- BatchNorm with batch statistics at inference ---------------------------------------------


def test_batch_statistics_mode_equals_train_mode_batchnorm():
    """With one BN chunk covering the image, the mode is exactly train-mode BatchNorm without the update."""
    import copy

    torch.manual_seed(0)
    for cfg in (LidiaConfig.gray(), LidiaConfig.gray(light=False)):
        net = Lidia(cfg).train()
        with torch.no_grad():
            net(torch.rand(1, 1, 24, 24) * 2 - 1)  # running statistics away from their init
        y = torch.rand(1, 1, 18, 20) * 2 - 1
        batch = copy.deepcopy(net).eval().use_batch_statistics(chunk=10**9)
        with torch.no_grad():
            ref = net(y)
        with torch.inference_mode():
            out = batch(y, chunk=64)
            assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5)
            chunked = copy.deepcopy(net).eval().use_batch_statistics(chunk=200)(y, chunk=64)
            assert not torch.allclose(chunked, ref, rtol=1e-4, atol=1e-5)  # BN chunks do normalise apart
        with pytest.raises(ValueError, match="batch-statistics"):
            batch.fold_batchnorm()


def test_restorer_batch_statistics_option(camera):
    x = camera[..., :96, :96]
    op = Denoise(sigma=25 / 255)
    y = op.measure(x, generator=torch.Generator().manual_seed(0))
    out = restore.load("lidia", bn="batch").restore(y, op)
    assert psnr(out.image.clamp(0, 1), x) - psnr(y, x) > 6.0
    with pytest.raises(restore.RestoreError, match="option 'bn' of model 'lidia' must be one of eval, batch"):
        restore.load("lidia", bn="train")


# ---- training step -----------------------------------------------------------------------------


def test_training_loss_contract():
    """fast=False is the plain fp32 step exactly; fast=True (bf16 autocast) is close, keeps fp32 grads."""
    from restore.training.lidia import log_mse_loss, to_model_units, training_loss

    torch.manual_seed(0)
    model = Lidia(LidiaConfig.gray()).train()
    clean = torch.rand(2, 1, 24, 24)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    y, x = to_model_units(clean + 0.1 * noise, clean)
    expected = log_mse_loss(model(y), x)
    plain = training_loss(model, clean, 0.1, torch.Generator().manual_seed(3), fast=False)
    assert torch.equal(plain, expected)
    fast = training_loss(model, clean, 0.1, torch.Generator().manual_seed(3))
    assert fast.dtype == torch.float32 and fast.dim() == 0
    assert abs(float(fast) - float(plain)) < 0.02
    fast.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="B x C x H x W"):
        training_loss(model, clean[0], 0.1)
    with pytest.raises(ValueError, match="sigma"):
        training_loss(model, clean, 0.0)
