"""The compressive autoencoder's pieces that training speed work touched: GDN and the bf16 training loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from restore.nets.cae import GDN, CaeConfig, CompressiveAutoencoder
from restore.training.cae import prepare_for_training, training_loss
from restore.weights import load_model_files


def _reference_gdn(g: GDN, x: torch.Tensor) -> torch.Tensor:
    """Balle's definition with a 1x1 convolution, as the layer was first written."""
    beta = g.beta_root**2 + 1e-6
    gamma = (g.gamma_root**2)[:, :, None, None]
    norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
    return x * norm if g.inverse else x / norm


def test_gdn_equals_its_definition_in_both_layouts() -> None:
    torch.manual_seed(0)
    for inverse in (False, True):
        g = GDN(16, inverse=inverse)
        with torch.no_grad():
            g.gamma_root.add_(0.1 * torch.rand(16, 16))
        x = torch.randn(2, 16, 9, 7)
        ref = _reference_gdn(g, x)
        torch.testing.assert_close(g(x), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(g(x.contiguous(memory_format=torch.channels_last)), ref, rtol=1e-4, atol=1e-5)


def test_gdn_gradients_equal_the_definition() -> None:
    torch.manual_seed(1)
    g = GDN(6).double()
    x = torch.randn(1, 6, 5, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(g, (x,))


def test_fast_training_loss_matches_fp32(astronaut: torch.Tensor) -> None:
    """bf16 autocast (where the CPU has it) changes the loss by bf16 rounding only; the rate stays fp32."""
    state, doc = load_model_files("cae-a0483")  # trained weights: an untrained net's rate is all noise
    model = CompressiveAutoencoder(CaeConfig(**doc["config"]))
    model.load_state_dict(state)
    x = astronaut[..., :64, :64].expand(2, -1, -1, -1).contiguous()
    torch.manual_seed(5)
    ref, mse_ref, bpp_ref = training_loss(model, x, 0.0483, fast=False)
    fast_model = prepare_for_training(model)
    torch.manual_seed(5)
    loss, mse, bpp = training_loss(fast_model, x, 0.0483, fast=True)
    assert loss.dtype == torch.float32
    assert abs(bpp - bpp_ref) / bpp_ref < 0.02 and abs(mse - mse_ref) / mse_ref < 0.02, (bpp, bpp_ref, mse, mse_ref)
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in fast_model.parameters())
