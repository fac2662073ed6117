"""The adversarial PreAct ResNet-18: official state-dict layouts, the forward formula, branch state, a training step.

Expected layouts are generated from the patterns of the official listings (official_state_dicts.md, "Adv PreAct
ResNet-18, norm_module=bn/auxbn/saauxbn"): per block ``bn1``, ``conv1``, ``bn2``, ``conv2`` and, when the shape
changes, ``shortcut.0``; BN entries ``weight, bias, running_mean, running_var, num_batches_tracked`` (bn),
the same under ``bn_list.{0,1}`` (auxbn), or statistics under ``bn_list.{0,1}`` then a 3-row ``embed.weight``
(saauxbn).
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import sabn
from tasks.adv.model import ADV_BRANCH, CLEAN_BRANCH, IMAGENET_MEAN, IMAGENET_STD, PreActResNet18, build_model

NORMS = ("bn", "auxbn", "saauxbn")
EPS = 1e-5


def official_layout(norm: str, width: int = 64, num_classes: int = 10, in_channels: int = 3) -> list[tuple[str, tuple]]:
    """(key, shape) in the official order."""

    def norm_keys(p: str, c: int) -> list[tuple[str, tuple]]:
        stats = [("running_mean", (c,)), ("running_var", (c,)), ("num_batches_tracked", ())]
        if norm == "bn":
            return [(p + k, s) for k, s in [("weight", (c,)), ("bias", (c,)), *stats]]
        if norm == "auxbn":
            return [(f"{p}bn_list.{i}.{k}", s) for i in range(2) for k, s in [("weight", (c,)), ("bias", (c,)), *stats]]
        return [(f"{p}bn_list.{i}.{k}", s) for i in range(2) for k, s in stats] + [(p + "embed.weight", (3, 2 * c))]

    out = [("normal.mean", (in_channels,)), ("normal.std", (in_channels,)), ("conv1.weight", (width, in_channels, 3, 3))]
    cin = width
    for li, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2), (8, 2)], start=1):
        c = width * mult
        for b in range(2):
            s = stride if b == 0 else 1
            p = f"layer{li}.{b}."
            out += norm_keys(p + "bn1.", cin)
            out.append((p + "conv1.weight", (c, cin, 3, 3)))
            out += norm_keys(p + "bn2.", c)
            out.append((p + "conv2.weight", (c, c, 3, 3)))
            if s != 1 or cin != c:
                out.append((p + "shortcut.0.weight", (c, cin, 1, 1)))
            cin = c
    out += [("linear.weight", (num_classes, cin)), ("linear.bias", (num_classes,))]
    return out


@pytest.mark.parametrize(
    ("norm", "entries", "params"), [("bn", 104, 11_171_146), ("auxbn", 184, 11_177_930), ("saauxbn", 136, 11_184_714)]
)
def test_full_width_state_dict_matches_the_official_listing(norm, entries, params):
    model = PreActResNet18(norm)
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == official_layout(norm)
    assert len(got) == entries
    assert sum(p.numel() for p in model.parameters()) == params
    # Spot lines copied from the listings.
    listing = dict(got)
    assert listing["layer2.0.shortcut.0.weight"] == (128, 64, 1, 1)
    assert listing["layer4.0.shortcut.0.weight"] == (512, 256, 1, 1)
    assert "layer1.0.shortcut.0.weight" not in listing and "layer2.1.shortcut.0.weight" not in listing
    assert listing["linear.weight"] == (10, 512)
    if norm == "saauxbn":
        assert listing["layer4.1.bn2.embed.weight"] == (3, 1024)
        assert "layer1.0.bn1.bn_list.0.weight" not in listing
    if norm == "bn":
        assert not sabn.conditional_layers(model)
        assert type(model.layer1[0].bn1) is torch.nn.BatchNorm2d


def random_official_state(norm: str, width: int, num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_layout(norm, width, num_classes):
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(5)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("bn1.weight", "bn2.weight")) or key.endswith("embed.weight"):
            sd[key] = 1 + 0.3 * torch.randn(shape, generator=g)
        elif key == "normal.mean":
            sd[key] = torch.tensor([0.4, 0.5, 0.6])
        elif key == "normal.std":
            sd[key] = torch.tensor([0.2, 0.25, 0.3])
        elif key.endswith(".weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            sd[key] = torch.randn(shape, generator=g) / fan_in**0.5
        else:
            sd[key] = 0.3 * torch.randn(shape, generator=g)
    return sd


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, norm: str, branch: int) -> torch.Tensor:
    """The official PreAct ResNet-18 in eval mode, written from the state dict and the paper's formulas."""

    def bn(p: str, h: torch.Tensor) -> torch.Tensor:
        q = p if norm == "bn" else f"{p}bn_list.{branch}."
        xhat = (h - v(sd[q + "running_mean"])) / torch.sqrt(v(sd[q + "running_var"]) + EPS)
        if norm in ("bn", "auxbn"):
            return v(sd[q + "weight"]) * xhat + v(sd[q + "bias"])
        e = sd[p + "embed.weight"]
        c = e.shape[1] // 2
        g_sa, b_sa, g_i, b_i = e[2, :c], e[2, c:], e[branch, :c], e[branch, c:]
        return v(g_i) * (v(g_sa) * xhat + v(b_sa)) + v(b_i)

    def v(t):
        return t.view(1, -1, 1, 1)

    h = F.conv2d((x - v(sd["normal.mean"])) / v(sd["normal.std"]), sd["conv1.weight"], padding=1)
    for li in range(1, 5):
        for b in range(2):
            p = f"layer{li}.{b}."
            stride = 2 if li > 1 and b == 0 else 1
            out = F.relu(bn(p + "bn1.", h))
            sc = F.conv2d(out, sd[p + "shortcut.0.weight"], stride=stride) if p + "shortcut.0.weight" in sd else h
            out = F.conv2d(out, sd[p + "conv1.weight"], stride=stride, padding=1)
            out = F.conv2d(F.relu(bn(p + "bn2.", out)), sd[p + "conv2.weight"], padding=1)
            h = out + sc
    return F.linear(h.mean(dim=(2, 3)), sd["linear.weight"], sd["linear.bias"])


@pytest.mark.parametrize("norm", NORMS)
def test_official_layout_loads_strictly_and_gives_the_formula(norm):
    sd = random_official_state(norm, width=4, num_classes=7)
    model = PreActResNet18(norm, num_classes=7, base_width=4).eval()
    model.load_state_dict(sd, strict=True)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for branch in (CLEAN_BRANCH, ADV_BRANCH):
        with torch.no_grad():
            got = model(x, branch=branch)
        torch.testing.assert_close(got, reference_forward(sd, x, norm, branch), rtol=1e-4, atol=1e-5)
    # Saving gives back exactly the official state dict.
    saved = model.state_dict()
    assert list(saved) == list(sd)
    for k in sd:
        assert torch.equal(saved[k], sd[k]), k


def test_saauxbn_saves_the_shared_affine_as_the_last_embedding_row():
    # A deep copy (as EMA helpers make) keeps writing the official layout.
    model = copy.deepcopy(PreActResNet18("saauxbn", base_width=4))
    layer = model.layer3[1].bn2
    rows = model.state_dict()["layer3.1.bn2.embed.weight"]
    c = layer.num_features
    assert torch.equal(rows[:2], layer.embed.weight.detach())
    assert torch.equal(rows[2, :c], layer.shared_weight.detach())
    assert torch.equal(rows[2, c:], layer.shared_bias.detach())
    # Official initialisation: every row has scales ~ N(1, 0.02) and zero shifts.
    assert rows[:, c:].abs().max() == 0 and (rows[:, :c] - 1).abs().max() < 0.2


@pytest.mark.parametrize("norm", NORMS)
def test_output_shapes_and_any_input_size(norm):
    model = PreActResNet18(norm, num_classes=5, base_width=4)
    for size in (32, 8, 40):
        assert model(torch.rand(2, 3, size, size)).shape == (2, 5)
    assert model.features(torch.rand(2, 3, 32, 32)).shape == (2, 32)
    gray = PreActResNet18(norm, num_classes=10, base_width=4, mean=(0.5,), std=(0.5,))
    assert gray(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        gray(torch.rand(2, 3, 32, 32))


def test_normalisation_is_inside_the_model_with_imagenet_defaults():
    model = PreActResNet18("bn", base_width=4)
    assert torch.allclose(model.normal.mean, torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(model.normal.std, torch.tensor(IMAGENET_STD))
    x = torch.rand(2, 3, 8, 8)
    expected = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.normal(x), expected)


def test_unknown_norm_and_bad_branch_are_errors():
    with pytest.raises(ValueError, match="valid: bn, auxbn, saauxbn"):
        PreActResNet18("sabn")
    model = PreActResNet18("auxbn", base_width=4)
    with pytest.raises(ValueError, match=r"out of range \[0, 2\)"):
        model.branch = 2
    with pytest.raises(TypeError):
        model.branch = 1.0
    with pytest.raises(ValueError), model.use_branch(-1):
        pass
    assert model.branch == 0


@pytest.mark.parametrize("norm", ["auxbn", "saauxbn"])
def test_branch_is_model_state_and_is_restored_after_exceptions(norm):
    torch.manual_seed(0)
    model = PreActResNet18(norm, base_width=4)
    # Make the branches differ.
    with torch.no_grad():
        for layer in sabn.conditional_layers(model):
            layer.bn_list[1].running_mean.add_(0.5)
    model.eval()
    x = torch.rand(2, 3, 16, 16)
    assert model.branch == CLEAN_BRANCH
    with torch.no_grad():
        clean, adv = model(x, branch=0), model(x, branch=1)
        assert not torch.allclose(clean, adv)
        assert torch.equal(model(x), clean)  # forward(x, branch=1) did not leave branch 1 active
        model.branch = ADV_BRANCH
        assert torch.equal(model(x), adv)
        with model.use_branch(CLEAN_BRANCH):
            assert model.branch == 0
            assert torch.equal(model(x), clean)
        assert model.branch == 1
        with pytest.raises(RuntimeError, match="boom"), model.use_branch(CLEAN_BRANCH):
            raise RuntimeError("boom")
        assert model.branch == 1
        assert all(layer._condition == 1 for layer in sabn.conditional_layers(model))
        assert torch.equal(model(x), adv)


def test_bn_variant_accepts_and_ignores_the_branch():
    model = PreActResNet18("bn", base_width=4).eval()
    assert not model.is_conditional
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out0 = model(x, branch=0)
        with model.use_branch(1):
            assert model.branch == 1
            assert torch.equal(model(x), out0)


@pytest.mark.parametrize("norm", NORMS)
def test_one_sgd_step_on_the_paper_objective(norm):
    from tasks.adv.attacks import pgd

    torch.manual_seed(0)
    model = build_model(norm, num_classes=4, base_width=4).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x_adv = pgd(model, x, y, eps=8 / 255, step_size=2 / 255, steps=2, branch=ADV_BRANCH, mode="train",
                generator=torch.Generator().manual_seed(0))
    loss = 0.5 * (F.cross_entropy(model(x, branch=CLEAN_BRANCH), y) + F.cross_entropy(model(x_adv, branch=ADV_BRANCH), y))
    opt.zero_grad()
    loss.backward()
    # Both halves reach their branch: every parameter (both branches' affines included) gets a gradient.
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    opt.step()
    assert torch.isfinite(loss)
    after = model.state_dict()
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    if norm != "bn":
        # Clean pass moved branch 0's statistics once; the attack (2 steps) and the adversarial pass moved branch 1.
        assert int(after["layer1.0.bn1.bn_list.0.num_batches_tracked"]) == 1
        assert int(after["layer1.0.bn1.bn_list.1.num_batches_tracked"]) == 3
    else:
        assert int(after["layer1.0.bn1.num_batches_tracked"]) == 4
