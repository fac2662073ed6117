"""The evaluator on generators with known answers: a 'generator' that returns real digits of the requested class
scores the classifier's own accuracy and a small Fréchet distance, one that ignores the class scores chance; IS/FID
with a labelled stand-in Inception; the classifier is cached; sampling leaves the model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tasks.common.app import compose_config
from tasks.common.runtime import DistEnv
from tasks.gan import classifier as classifier_module
from tasks.gan.evaluation import DataSource, Evaluator, evaluation_batches, sampling_mode
from tasks.gan.models import SNGANGenerator32


class RealDigits(nn.Module):
    """Returns a real test digit of each requested class (or random digits when ``follow_labels`` is False, or
    uniform noise when ``noise``)."""

    latent_dim = 128
    n_classes = 10

    def __init__(self, data: DataSource, follow_labels: bool, noise: bool = False) -> None:
        super().__init__()
        test = data.split("test")
        self.images = torch.stack([test[i][0] for i in range(len(test))])
        self.labels = torch.tensor(test.targets)
        self.follow_labels, self.noise = follow_labels, noise
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z, y):
        pick = (z[:, 0].abs() * 1e4).long()
        if self.noise:
            return torch.rand(len(z), 3, 32, 32, generator=torch.Generator().manual_seed(int(pick[0]))) * 2 - 1
        if not self.follow_labels:
            return self.images[pick % len(self.images)]
        out = []
        for p, label in zip(pick.tolist(), y.tolist()):
            pool = (self.labels == label).nonzero().flatten()
            out.append(self.images[pool[p % len(pool)]])
        return torch.stack(out)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", f"eval.cache_dir={cache}", "device=cpu",
                                  "eval.num_samples=300",
                                  "eval.inception.enabled=false"])


@pytest.fixture(scope="module")
def evaluator(cfg):
    return Evaluator(cfg, DataSource(cfg.data), 10, torch.device("cpu")).prepare()


def test_real_digits_of_the_requested_class_score_like_the_classifier(evaluator):
    data = evaluator.data
    good = evaluator.evaluate(RealDigits(data, True), 0, "test generator")
    shuffled = evaluator.evaluate(RealDigits(data, False), 0, "test generator")
    noise = evaluator.evaluate(RealDigits(data, False, noise=True), 0, "test generator")
    clf = evaluator.classifier
    assert clf.test_acc > 60  # trained for 3 epochs at width 8: far above chance
    assert good["class_acc"].value > 0.8 * clf.test_acc and shuffled["class_acc"].value < 25
    # the Fréchet distance sees the images, not whether they match the labels
    fd_noise = noise["fd_classifier"].value
    assert good["fd_classifier"].value < 0.2 * fd_noise and shuffled["fd_classifier"].value < 0.2 * fd_noise
    m = good["class_acc"]
    assert m.stand_in and "not Inception" in m.stand_in
    assert m.protocol["samples"] == 300 and m.protocol["bn_mode"].startswith("eval")
    assert good["fd_classifier"].protocol["reference"] == "digits train (1437 images)"


def test_the_classifier_is_cached_and_reused(cfg, evaluator, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")

    monkeypatch.setattr(classifier_module, "train_classifier", no_training)
    again = Evaluator(cfg, DataSource(cfg.data), 10, torch.device("cpu")).prepare()
    assert again.classifier.path == evaluator.classifier.path
    for a, b in zip(again.classifier.model.state_dict().values(), evaluator.classifier.model.state_dict().values()):
        assert torch.equal(a, b)


def test_stand_in_inception_gives_labelled_is_and_fid(cfg, stand_in_inception, tmp_path):
    cfg = compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", f"eval.cache_dir={tmp_path}", "device=cpu",
                                 "eval.num_samples=6", "eval.batch_size=3", "eval.inception.is_splits=2",
                                 "eval.reference_count=4", "eval.classifier.enabled=false",
                                 f"eval.inception.weights={stand_in_inception}"])
    ev = Evaluator(cfg, DataSource(cfg.data), 10, torch.device("cpu")).prepare()
    torch.manual_seed(0)
    metrics = ev.evaluate(SNGANGenerator32(n_classes=10, gf_dim=8), 5, "random generator")
    assert set(metrics) == {"is", "is_std", "fid"}
    for m in metrics.values():
        assert "untrained FID Inception" in m.stand_in and "stand-in Inception" in m.protocol["features"]
    assert metrics["is"].value >= 1.0 and metrics["fid"].value > 0
    assert metrics["fid"].protocol["reference"] == "digits train (4 images)"
    cached = list(tmp_path.glob("refstats_digits_train4_32px_inception-standin-*.npz"))
    assert len(cached) == 1  # the name says which data, split, count, resolution and weights


def test_batch_statistics_sampling_restores_every_buffer():
    torch.manual_seed(0)
    G = SNGANGenerator32(n_classes=3, gf_dim=8).eval()
    before = {k: b.clone() for k, b in G.named_buffers()}
    with torch.no_grad(), sampling_mode(G, "batch") as model:
        assert model.training
        model(torch.randn(4, 128), torch.tensor([0, 1, 2, 0]))
    assert not G.training
    for k, b in G.named_buffers():
        assert torch.equal(b, before[k]), k


def test_evaluation_samples_do_not_depend_on_the_number_of_processes():
    single = {start: (z, y) for start, z, y in evaluation_batches(25, 10, 10, 4, 3, DistEnv())}
    ranks = [dict((s, (z, y)) for s, z, y in evaluation_batches(25, 10, 10, 4, 3, DistEnv(r, 2, r))) for r in (0, 1)]
    assert sorted(ranks[0]) == [0, 20] and sorted(ranks[1]) == [10]
    for start, (z, y) in {**ranks[0], **ranks[1]}.items():
        assert torch.equal(z, single[start][0]) and torch.equal(y, single[start][1])
