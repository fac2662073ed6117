"""Generator EMA: the decay, the starting average, hard copies before start_step, and the two buffer policies."""

from __future__ import annotations

import pytest
import torch

from tasks.gan.checkpoint import load_generator_checkpoint
from tasks.gan.ema import GeneratorEMA
from tasks.gan.models import BigGANGenerator32, SNGANGenerator32


def tiny_generator(seed: int = 0) -> SNGANGenerator32:
    torch.manual_seed(seed)
    return SNGANGenerator32(n_classes=3, gf_dim=8)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def shift_parameters(model: torch.nn.Module, delta: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(delta)


def train_forward(model: torch.nn.Module, scale: float) -> None:
    with torch.no_grad():
        model.train()(torch.randn(6, 128) * scale, torch.tensor([0, 1, 2, 0, 1, 2]))


def test_ema_starts_from_the_generator_and_averages_with_the_decay():
    G = tiny_generator()
    p0 = params(G)
    ema = GeneratorEMA(G, decay=0.9)
    shift_parameters(G, 1.0)
    ema.update(G)  # official: avg = 0.9 · p0 + 0.1 · p1 (no hard copy on the first update)
    for k, p in ema.module.named_parameters():
        torch.testing.assert_close(p, p0[k] + 0.1)
    ema.update(G)
    for k, p in ema.module.named_parameters():
        torch.testing.assert_close(p, p0[k] + 0.19)
    # the live generator is untouched and the average is outside autograd
    for k, p in G.named_parameters():
        torch.testing.assert_close(p.detach(), p0[k] + 1.0)
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_updates_before_start_step_are_hard_copies():
    G = tiny_generator()
    ema = GeneratorEMA(G, decay=0.9, start_step=2)
    shift_parameters(G, 1.0)
    ema.update(G, step=1)
    for (_, a), (_, b) in zip(ema.module.named_parameters(), G.named_parameters()):
        assert torch.equal(a, b.detach())
    p1 = params(G)
    shift_parameters(G, 1.0)
    ema.update(G, step=2)
    for k, p in ema.module.named_parameters():
        torch.testing.assert_close(p, p1[k] + 0.1)


def test_live_buffer_policy_evaluates_with_the_live_statistics():
    G = tiny_generator()
    ema = GeneratorEMA(G, decay=0.999, buffers="live")
    train_forward(G, 3.0)
    ema.update(G)
    train_forward(G, 5.0)  # D steps keep moving the live statistics after the last update
    assert not torch.equal(ema.module.block2.b1.bn.running_var, G.block2.b1.bn.running_var)
    model = ema.for_eval(G)
    assert model is ema.module and not model.training
    for (name, a), (_, b) in zip(model.named_buffers(), G.named_buffers()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="pass the generator"):
        ema.for_eval()


def test_ema_buffer_policy_averages_the_statistics():
    G = tiny_generator()
    ema = GeneratorEMA(G, decay=0.9, buffers="ema")
    before = ema.module.b5.running_mean.clone()
    train_forward(G, 3.0)
    ema.update(G)
    torch.testing.assert_close(ema.module.b5.running_mean, 0.9 * before + 0.1 * G.b5.running_mean)
    model = ema.for_eval()  # no live generator needed
    assert not model.training
    torch.testing.assert_close(model.b5.running_mean, 0.9 * before + 0.1 * G.b5.running_mean)


def test_bad_policy_and_decay_are_rejected():
    with pytest.raises(ValueError, match="buffers must be one of live, ema"):
        GeneratorEMA(tiny_generator(), buffers="copy")
    with pytest.raises(ValueError, match="decay"):
        GeneratorEMA(tiny_generator(), decay=1.5)


def test_ema_of_a_spectrally_normalised_generator_samples_and_its_state_dict_loads_into_a_generator():
    torch.manual_seed(0)
    G = BigGANGenerator32(n_classes=3, gf_dim=2)
    ema = GeneratorEMA(G, decay=0.99)
    shift_parameters(G, 0.01)
    ema.update(G, step=0)
    z, y = torch.randn(2, 128), torch.tensor([0, 2])
    with torch.no_grad():
        out = ema.for_eval(G)(z, y)
    assert out.shape == (2, 3, 32, 32)
    fresh = BigGANGenerator32(n_classes=3, gf_dim=2)
    load_generator_checkpoint(ema.state_dict(), fresh)  # module.* + n_averaged
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(z, y), out)
