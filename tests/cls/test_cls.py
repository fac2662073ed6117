"""The classification task: CIFAR models in BN and MimicNorm variants, the memory probe, an end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sabn import mimicnorm as mn
from tasks.cls.models import VARIANTS, build_model
from tasks.common.app import compose_config, group_options
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.memory import SavedTensorBytes, peak_step_memory


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "shufflenetv2"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_model_and_variant_trains_one_step(name, variant):
    torch.manual_seed(0)
    model = build_model(name, 7, variant, width=0.0625 if name != "shufflenetv2" else 0.1)
    assert mn.has_intermediate_bn(model) == (variant == "bn")
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules()) == (variant in ("mimicnorm", "lastbn"))
    if variant in ("mimicnorm", "weightmean"):
        mn.weight_mean_(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if variant in ("mimicnorm", "weightmean"):
        mn.project_after_steps(opt, model)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 7, (4,))
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    if variant in ("mimicnorm", "weightmean"):
        assert all(c.weight.mean(dim=(1, 2, 3)).abs().max() < 1e-6 for c in mn.selected_convs(model))


def test_bn_free_residual_scalars_follow_the_code_rule():
    model = build_model("resnet18", 10, "mimicnorm")
    scales = [m.scale.item() for m in model.modules() if isinstance(m, mn.ResidualScale)]
    branch = [s for s in scales if s != pytest.approx(1.2)]
    assert branch == pytest.approx([1.44 / i for i in range(1, 9)])
    assert len(scales) - len(branch) == 3  # projection shortcuts of stages 2-4
    paper = build_model("resnet18", 10, "mimicnorm", scale_rule="paper", shortcut_scale=False)
    assert [m.scale.item() for m in paper.modules() if isinstance(m, mn.ResidualScale)] == pytest.approx(
        [i**-0.5 for i in range(1, 9)])


def test_memory_probe_counts_saved_activations_and_a_peak():
    model = build_model("resnet18", 10, "bn", width=0.125)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step(counter=None):
        with counter or torch.enable_grad():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()

    with SavedTensorBytes(model) as saved:
        nn.functional.cross_entropy(model(x), y)
    assert saved.bytes > x.numel() * 4  # at least the activations of a few layers
    mimic = build_model("resnet18", 10, "mimicnorm", width=0.125)
    with SavedTensorBytes(mimic) as saved_mimic:
        nn.functional.cross_entropy(mimic(x), y)
    assert saved_mimic.bytes < saved.bytes  # no BN inputs/outputs kept for backward
    peak = peak_step_memory(step, torch.device("cpu"))
    assert peak["method"] and (peak["peak_mb"] is None or peak["peak_mb"] >= 0)


def test_every_cls_experiment_composes_with_its_variant():
    for exp in group_options("cls", "exp"):
        cfg = compose_config("cls", [f"+exp={exp}"])
        assert cfg.exp == exp and exp.startswith(cfg.model.name)
        assert exp.endswith(str(cfg.norm.name).replace("none", "nonorm") if cfg.model.name == "convnet" else str(cfg.norm.name))
    assert compose_config("cls", ["+exp=resnet50_mimicnorm"]).train.batch_size == 128


@pytest.mark.slow
def test_resnet18_mimicnorm_smoke_run_reports_accuracy_and_memory(cli, tmp_path):
    run_dir = tmp_path / "run"
    result = cli(["+exp=resnet18_mimicnorm", "scale=smoke", "train.epochs=1", f"run_dir={run_dir}"], tmp_path,
                 module="tasks.cls")
    assert result.returncode == 0, result.stderr
    data = json.loads((run_dir / "results.json").read_text())
    assert set(data["metrics"]) == {"test_acc_final", "test_acc_best", "peak_mem_mb", "activation_mb"}
    assert data["metrics"]["activation_mb"]["value"] > 0 and "saves for backward" in data["metrics"]["activation_mb"]["protocol"]["method"]
    state = load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])["objects"]["model"]
    convs = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 4 and v[0].numel() > 50]
    assert convs and all(w.mean(dim=(1, 2, 3)).abs().max() < 1e-5 for w in convs)


def test_unsupported_variant_is_a_one_line_error(cli, tmp_path):
    result = cli(["+exp=convnet_bn", "scale=smoke", "norm=mimicnorm"], tmp_path, module="tasks.cls")
    assert result.returncode == 2 and "norm=mimicnorm is not available for model convnet" in result.stderr
