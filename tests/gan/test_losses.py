"""Hinge losses on known inputs."""

from __future__ import annotations

import torch

from tasks.gan.losses import d_hinge_loss, g_hinge_loss


def test_d_hinge_loss_known_values():
    real = torch.tensor([2.0, 0.5, -1.0])  # relu(1 − real) = 0, 0.5, 2
    fake = torch.tensor([-2.0, 0.0, 0.5])  # relu(1 + fake) = 0, 1, 1.5
    torch.testing.assert_close(d_hinge_loss(real, fake), torch.tensor(2.5 / 3 + 2.5 / 3))


def test_g_hinge_loss_is_minus_the_mean_fake_logit():
    torch.testing.assert_close(g_hinge_loss(torch.tensor([-2.0, 0.0, 0.5])), torch.tensor(0.5))


def test_d_hinge_loss_ignores_samples_beyond_the_margin_and_accepts_column_logits():
    real = torch.tensor([[3.0], [0.0]], requires_grad=True)
    fake = torch.tensor([[-3.0], [0.0], [1.0], [2.0]], requires_grad=True)
    loss = d_hinge_loss(real, fake)
    loss.backward()
    torch.testing.assert_close(real.grad, torch.tensor([[0.0], [-0.5]]))
    torch.testing.assert_close(fake.grad, torch.tensor([[0.0], [0.25], [0.25], [0.25]]))
    torch.testing.assert_close(loss, d_hinge_loss(real.detach().view(-1), fake.detach().view(-1)))
