"""What a search reports: per-epoch records, the final metrics with their protocols, and the accuracy-vs-epoch curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from tasks.common.results import Metric

from .benchmark import FIELDS, PROTOCOL, NB201Benchmark
from .data import SearchData
from .search_space import EDGES, OP_NAMES, alpha_entropy, arch_str, count_parameter_free
from .supernet import NB201SuperNet

#: The NB201 field that is "the test accuracy on the search dataset", by DatasetInfo.name. The SaBN code reports
#: ``get_metrics(dataset, 'ori-test')`` (paper.md §2.2): the full test set, 200-epoch training, mean over seeds.
SEARCH_DATASET_FIELD: dict[str, str] = {
    "CIFAR-10": "cifar10_test",
    "CIFAR-100": "cifar100_test",
    "ImageNet16-120": "imagenet16_test",
}
#: Fields drawn in the curve, with their legend labels (the ori-test numbers of the three NB201 datasets).
CURVE_FIELDS: dict[str, str] = {"cifar10_test": "CIFAR-10", "cifar100_test": "CIFAR-100",
                                "imagenet16_test": "ImageNet16-120"}
ALGORITHM_NAMES = {"darts": "DARTS-V1 (first order)", "darts_v2": "DARTS-V2 (second order, unrolled α step)",
                   "gdas": "GDAS (hard Gumbel sample, one op per edge)"}
#: Keys of an epoch record kept in results.json's search history (the α probabilities stay in metrics.jsonl).
HISTORY_KEYS = ("epoch", "genotype", "param_free_ops", "alpha_entropy", "supernet/train_acc", "supernet/valid_acc")


class SearchLog:
    """The per-epoch records of a search and the running sums of the current epoch; checkpointed with the run.

    The sums stay on the device (no host synchronisation per step) and are read once per epoch.
    """

    def __init__(self, device: torch.device) -> None:
        self.epochs: list[dict[str, Any]] = []
        self._sums = torch.zeros(3, dtype=torch.float64, device=device)  # w-loss · steps, correct, α-loss · steps
        self._samples = 0
        self._steps = 0

    def add_step(self, w_loss: Tensor, correct: Tensor, samples: int, a_loss: Tensor) -> None:
        self._sums += torch.stack([w_loss.double(), correct.double(), a_loss.double()])
        self._samples += samples
        self._steps += 1

    def close_epoch(self) -> dict[str, float]:
        """The epoch's mean w-batch loss and accuracy (%) and mean α-batch loss; resets the sums."""
        w_loss, correct, a_loss = self._sums.tolist()
        steps, samples = max(1, self._steps), max(1, self._samples)
        out = {"supernet/train_loss": w_loss / steps, "supernet/train_acc": 100.0 * correct / samples,
               "supernet/arch_loss": a_loss / steps}
        self._sums.zero_()
        self._samples = self._steps = 0
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "sums": self._sums.cpu(), "samples": self._samples, "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = list(state["epochs"])
        self._sums.copy_(state["sums"])
        self._samples, self._steps = int(state["samples"]), int(state["steps"])


def epoch_record(epoch: int, model: NB201SuperNet, train_stats: dict[str, float], valid_acc: float,
                 benchmark: NB201Benchmark | None, t: DictConfig) -> dict[str, Any]:
    """Everything logged at the end of search epoch ``epoch`` (1-based): the derived genotype (arch string), its
    parameter-free op count, α entropy and softmax(α) per edge, the supernet's accuracies, LR, τ (GDAS) and — with a
    benchmark — the genotype's NB201 accuracies under ``nb201/<field>`` (fields: :data:`benchmark.FIELDS`)."""
    alpha = model.arch_parameters.detach()
    genotype = model.genotype()
    record: dict[str, Any] = {"epoch": epoch, "genotype": arch_str(genotype),
                              "param_free_ops": count_parameter_free(genotype), "alpha_entropy": alpha_entropy(alpha),
                              **train_stats, "supernet/valid_acc": valid_acc}
    if t.algorithm == "gdas":
        record["tau"] = float(model.tau)
    probs = alpha.softmax(dim=-1).cpu().tolist()
    for e, edge in enumerate(EDGES):
        for k, op in enumerate(OP_NAMES):
            record[f"alpha/{edge}/{op}"] = round(probs[e][k], 6)
    if benchmark is not None:
        acc = benchmark.query(genotype)
        record["nb201/index"] = acc.index
        record.update({f"nb201/{field}": getattr(acc, field) for field in FIELDS})
    return record


def epoch_summary(record: dict[str, Any], epochs: int) -> str:
    """One log line for an epoch record."""
    text = (f"epoch {record['epoch']}/{epochs}: {record['genotype']} | parameter-free ops {record['param_free_ops']}"
            f" | α entropy {record['alpha_entropy']:.4f} | supernet train {record['supernet/train_acc']:.1f} % "
            f"valid {record['supernet/valid_acc']:.1f} %")
    if "nb201/cifar10_test" in record:
        text += " | NB201 ori-test " + ", ".join(f"{label} {record[f'nb201/{field}']:.2f}"
                                                 for field, label in CURVE_FIELDS.items())
    return text


def final_metrics(history: list[dict[str, Any]], data: SearchData, cfg: DictConfig,
                  benchmark: NB201Benchmark | None, epochs: int) -> tuple[dict[str, Metric], dict[str, Any]]:
    """results.json metrics (each with its protocol) and extra fields (final genotype, α, compact history)."""
    t, last = cfg.train, history[-1]
    # Only what differs between measurements goes into a protocol; algorithm, norm and dataset are results.json
    # fields of their own (model, norm, dataset).
    search = {"genotype": f"argmax α per edge (incl. none) after the last search epoch ({epochs} of a "
                          f"{t.epochs}-epoch schedule; not a best-valid pick)"}
    metrics: dict[str, Metric] = {}

    field = SEARCH_DATASET_FIELD.get(data.info.name)
    if benchmark is None:
        off = {"lookup": "off (nas.benchmark_path is null)", **search}
        metrics["nb201_test_acc"] = Metric(None, off)
        metrics.update({f"nb201_{f}": Metric(None, off) for f in FIELDS})
    else:
        for f, (dataset, key, desc) in FIELDS.items():
            metrics[f"nb201_{f}"] = Metric(last[f"nb201/{f}"], {
                "benchmark": PROTOCOL, "number": desc, "query": f"get_more_info(index, '{dataset}', hp='200', "
                f"is_random=False)['{key}']", **search})
        if field is None:
            metrics["nb201_test_acc"] = Metric(None, {
                "lookup": f"{data.info.name} is not an NB201 dataset: no test accuracy on the search dataset; "
                "see nb201_cifar10_test / nb201_cifar100_test / nb201_imagenet16_test", **search})
        else:
            metrics["nb201_test_acc"] = Metric(last[f"nb201/{field}"], {
                **metrics[f"nb201_{field}"].protocol,
                "why": "the SaBN code reports get_metrics(dataset, 'ori-test') of the search dataset"})

    metrics["param_free_ops"] = Metric(last["param_free_ops"], {
        "what": "edges (of 6) of the genotype carrying none, skip_connect or avg_pool_3x3", **search})
    metrics["alpha_entropy"] = Metric(last["alpha_entropy"], {
        "what": "mean over the 6 edges of the entropy (nats) of softmax(α); uniform = ln 5 = 1.609", **search})
    tracked = bool(cfg.model.track_running_stats)
    metrics["supernet_valid_acc"] = Metric(last["supernet/valid_acc"], {
        "split": data.protocol["valid_data"],
        "bn_mode": "eval mode; search-cell norms use " + ("running statistics" if tracked else
                   "batch statistics (track_running_stats=False)") + "; stem/reduction/head BN running statistics",
        "forward": "as in training: DARTS mixture with sampled norm conditions, GDAS a fresh Gumbel sample",
        "weights": f"after search epoch {epochs}", **search})
    metrics["supernet_train_acc"] = Metric(last["supernet/train_acc"], {
        "split": data.protocol["weights_data"] + ", search augmentation",
        "what": "mean top-1 over the last epoch's w-step batches, train mode, before each step's update", **search})

    alpha = [[last[f"alpha/{edge}/{op}"] for op in OP_NAMES] for edge in EDGES]
    history_keys = (*HISTORY_KEYS, *(f"nb201/{f}" for f in FIELDS))
    extra = {
        "algorithm": ALGORITHM_NAMES[str(t.algorithm)],
        "genotype": last["genotype"],
        "alpha_softmax": {"edges": list(EDGES), "ops": list(OP_NAMES), "probs": alpha},
        "search_history": [{k: r[k] for k in history_keys if k in r} for r in history],
        "data_protocol": data.protocol,
    }
    return metrics, extra


def plot_search_curve(history: list[dict[str, Any]], path: str | Path, dataset_name: str, title: str) -> Path:
    """Accuracy vs search epoch (as the paper's DARTS figure): the genotype's NB201 test accuracies when looked up
    (the search dataset drawn bold), and the supernet's train/valid accuracy with the parameter-free op count."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, renders with Agg
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    lookup = "nb201/cifar10_test" in history[0]
    fig = Figure(figsize=(11 if lookup else 6, 4), layout="constrained")
    axes = fig.subplots(1, 2 if lookup else 1, squeeze=False)[0]
    if lookup:
        ax = axes[0]
        for field, label in CURVE_FIELDS.items():
            bold = label == dataset_name
            ax.plot(epochs, [r[f"nb201/{field}"] for r in history], marker="o", markersize=3,
                    linewidth=2.5 if bold else 1.0, label=label + (" (search data)" if bold else ""))
        ax.set(xlabel="search epoch", ylabel="NB201 test accuracy % (ori-test, 200 epochs)",
               title="derived genotype on NAS-Bench-201")
        ax.grid(alpha=0.3)
        ax.legend()
    ax = axes[-1]
    ax.plot(epochs, [r["supernet/train_acc"] for r in history], label="supernet train (w batches)")
    ax.plot(epochs, [r["supernet/valid_acc"] for r in history], label="supernet valid (α split)")
    ax.set(xlabel="search epoch", ylabel="accuracy %", title=f"supernet on {dataset_name}")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.step(epochs, [r["param_free_ops"] for r in history], where="mid", color="grey", linestyle="--",
              label="parameter-free ops")
    twin.set(ylabel="parameter-free ops in genotype", ylim=(-0.2, 6.2))
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize="small")
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
