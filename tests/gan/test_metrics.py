"""Fréchet distance, streaming statistics and the Inception Score: known answers and agreement with pytorch-fid's
``calculate_frechet_distance`` and the TF/torch-fidelity IS formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from tasks.gan.metrics import (
    FrechetReference,
    GaussianStats,
    InceptionScoreAccumulator,
    frechet_distance,
    inception_score,
)


def random_spd(dim: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(dim, rank or 2 * dim))
    return a @ a.T / a.shape[1]


def test_identical_statistics_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=16), random_spd(16, rng)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_two_gaussians_with_diagonal_covariances_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, abs=1e-10)


def test_one_dimensional_closed_form_and_symmetry():
    # N(0, 1) vs N(3, 4): 9 + 1 + 4 − 2·2 = 10
    assert frechet_distance(np.zeros(1), np.eye(1), np.full(1, 3.0), 4 * np.eye(1)) == pytest.approx(10.0)
    rng = np.random.default_rng(1)
    a, b = (rng.normal(size=8), random_spd(8, rng)), (rng.normal(size=8), random_spd(8, rng))
    assert frechet_distance(*a, *b) == pytest.approx(frechet_distance(*b, *a), rel=1e-9)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid's sqrtm call
@pytest.mark.parametrize(("dim", "rank"), [(8, None), (32, None), (64, None), (48, 24)])
def test_agrees_with_pytorch_fid(dim, rank):
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim) * 0.1
    s1, s2 = random_spd(dim, rng, rank), random_spd(dim, rng)
    ours = frechet_distance(mu1, s1, mu2, s2)
    theirs = calculate_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(theirs, abs=1e-3)
    ref = FrechetReference(mu2, s2)
    assert ref.distance(mu1, s1) == pytest.approx(ours, abs=1e-9)
    assert ref.distance(mu1, s1) == pytest.approx(ours, abs=1e-9)  # the cached √Σ gives the same again


def test_mismatching_statistics_are_rejected():
    with pytest.raises(ValueError, match="do not match"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_streaming_statistics_equal_numpy_mean_and_cov():
    rng = np.random.default_rng(2)
    x = rng.normal(loc=50.0, scale=2.0, size=(300, 6))  # a large mean: the shift keeps float64 sums exact
    stats = GaussianStats(6)
    for chunk in np.array_split(x, 7):
        stats.update(torch.from_numpy(chunk).float())
    mu, cov = stats.mean_cov()
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu.numpy(), x32.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x32, rowvar=False), rtol=1e-9, atol=1e-12)


def test_merging_accumulators_with_different_shifts_equals_one_accumulator():
    rng = np.random.default_rng(3)
    a, b = torch.from_numpy(rng.normal(size=(40, 4))), torch.from_numpy(rng.normal(loc=5.0, size=(25, 4)))
    one, left, right = GaussianStats(4), GaussianStats(4), GaussianStats(4)
    one.update(torch.cat([a, b]))
    left.update(a)
    right.update(b)
    left.merge(right)
    for x, y in zip(left.mean_cov(), one.mean_cov()):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def tf_inception_score(logits: np.ndarray, splits: int) -> tuple[float, float]:
    """The formula of the TF reference code (and torch-fidelity without shuffling), written out in NumPy."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n, scores = len(p), []
    for s in range(splits):
        part = p[s * n // splits: (s + 1) * n // splits]
        kl = part * (np.log(part) - np.log(np.mean(part, 0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_matches_the_reference_formula_and_streams():
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=3.0, size=(103, 1008))
    expected = tf_inception_score(logits, 10)
    assert inception_score(logits, 10) == pytest.approx(expected, rel=1e-9)
    acc = InceptionScoreAccumulator(103, 10)
    order = rng.permutation(103)  # batches may arrive in any order (DDP ranks)
    for idx in np.array_split(order, 9):
        acc.update(torch.from_numpy(logits[idx]), torch.from_numpy(idx))
    assert acc.result() == pytest.approx(expected, rel=1e-9)


def test_inception_score_known_answers():
    k = 10
    uniform = np.zeros((50, k))
    assert inception_score(uniform, 5)[0] == pytest.approx(1.0)
    confident = np.full((100, k), -50.0)
    confident[np.arange(100), np.arange(100) % k] = 50.0  # every class equally often, each sample certain
    mean, std = inception_score(confident, 10)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_needs_every_split_filled():
    acc = InceptionScoreAccumulator(20, 10)
    acc.update(torch.zeros(5, 3), torch.arange(5))
    with pytest.raises(ValueError, match="every split"):
        acc.result()
