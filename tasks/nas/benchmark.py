"""NAS-Bench-201 accuracy look-up through NATS-Bench's topology benchmark (``nats_bench``, fast mode).

Which numbers (all 200-epoch NB201 training, ``hp="200"``, mean over the benchmark's seeds, ``is_random=False``;
accuracies in %) — from :meth:`nats_bench.api_topology.NATStopology.get_more_info`:

==========================  =====================  ==================  =============================================
field                       dataset                get_more_info key   what it is
==========================  =====================  ==================  =============================================
``cifar10_valid``           ``cifar10-valid``      ``valid-accuracy``  trained on 25k CIFAR-10 train, x-valid 25k
``cifar10_test``            ``cifar10``            ``test-accuracy``   trained on all 50k train, ori-test 10k
``cifar100_test``           ``cifar100``           ``valtest-accuracy``  ori-test = full 10k test (x-valid + x-test)
``cifar100_xtest``          ``cifar100``           ``test-accuracy``   x-test half (5k) of the test set
``imagenet16_test``         ``ImageNet16-120``     ``valtest-accuracy``  ori-test = full 6k val (x-valid + x-test)
``imagenet16_xtest``        ``ImageNet16-120``     ``test-accuracy``   x-test half (3k)
==========================  =====================  ==================  =============================================

The SaBN code reports ``get_metrics(dataset, 'ori-test')`` (paper.md §2.2), i.e. ``cifar100_test`` /
``imagenet16_test`` here. Note that for cifar100 and ImageNet16-120 ``get_more_info``'s ``test-accuracy`` is the
*x-test* half; the ori-test figure is its ``valtest-accuracy`` (nats_bench 1.8 source).

Architectures are found with ``query_index_by_arch(arch_str)`` — never by a computed index (the benchmark's order
is not the itertools-product order).
"""

from __future__ import annotations

import bz2
import os
import pickle
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path

from tasks.common.errors import UserError

from .search_space import OP_NAMES, Genotype, arch_str, parse_arch_str

#: The fast-mode archive folder of NATS-Bench's topology search space (v1.0).
TSS_SIMPLE_DIR = "NATS-tss-v1_0-3ffb9-simple"
META_FILE = "meta.pickle.pbz2"
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
#: Evaluation sets recorded per dataset in the benchmark.
EVAL_NAMES: dict[str, tuple[str, ...]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}

#: (dataset, get_more_info key, description) of every reported field; printed next to the numbers.
FIELDS: dict[str, tuple[str, str, str]] = {
    "cifar10_valid": ("cifar10-valid", "valid-accuracy", "CIFAR-10 x-valid (25k), trained on 25k train"),
    "cifar10_test": ("cifar10", "test-accuracy", "CIFAR-10 ori-test (10k), trained on 50k train"),
    "cifar100_test": ("cifar100", "valtest-accuracy", "CIFAR-100 ori-test (10k = x-valid + x-test)"),
    "cifar100_xtest": ("cifar100", "test-accuracy", "CIFAR-100 x-test (5k)"),
    "imagenet16_test": ("ImageNet16-120", "valtest-accuracy", "ImageNet16-120 ori-test (6k = x-valid + x-test)"),
    "imagenet16_xtest": ("ImageNet16-120", "test-accuracy", "ImageNet16-120 x-test (3k)"),
}
PROTOCOL = "NAS-Bench-201 (NATS-tss v1.0), 200-epoch training (hp=200), mean over seeds, top-1 %"


class BenchmarkError(UserError):
    """The benchmark folder is missing, incomplete, or lacks the queried architecture."""


@dataclass(frozen=True)
class NB201Accuracies:
    """NB201 accuracies (%) of one architecture; see :data:`FIELDS` for exactly which number each field is."""

    arch_str: str
    index: int
    cifar10_valid: float
    cifar10_test: float
    cifar100_test: float
    cifar100_xtest: float
    imagenet16_test: float
    imagenet16_xtest: float

    def as_dict(self) -> dict[str, float | int | str]:
        """Flat dict for logging (keys = field names)."""
        return asdict(self)


def resolve_archive_dir(path: str | os.PathLike) -> Path:
    """The fast-mode folder holding ``meta.pickle.pbz2``: ``path`` itself or ``path/NATS-tss-v1_0-3ffb9-simple``
    (so ``$TORCH_HOME`` works too). Raises :class:`BenchmarkError` naming the fix."""
    root = Path(path).expanduser()
    for candidate in (root, root / TSS_SIMPLE_DIR):
        if (candidate / META_FILE).is_file():
            return candidate
    raise BenchmarkError(
        f"NAS-Bench-201 benchmark not found at {root}: expected the NATS-Bench fast-mode folder {TSS_SIMPLE_DIR}/ "
        f"(with {META_FILE}) there or inside it; extract {TSS_SIMPLE_DIR}.tar from the NATS-Bench release into it, "
        "or set nas.benchmark_path=null to search without the look-up"
    )


class NB201Benchmark:
    """Look-up of NB201 200-epoch accuracies by genotype or arch string (``nats_bench.create(..., "tss",
    fast_mode=True)``; per-architecture files are read lazily and cached)."""

    def __init__(self, path: str | os.PathLike) -> None:
        import nats_bench  # imported here: only runs with a benchmark pay for it

        self.archive_dir = resolve_archive_dir(path)
        try:
            self.api = nats_bench.create(str(self.archive_dir), "tss", fast_mode=True, verbose=False)
        except Exception as e:  # corrupt meta file, wrong pickle
            raise BenchmarkError(f"cannot read the benchmark at {self.archive_dir} ({type(e).__name__}: {e}); "
                                 "re-extract it") from e
        self._cache: dict[str, NB201Accuracies] = {}

    def __len__(self) -> int:
        return len(self.api)

    def query(self, arch: Sequence[str] | str) -> NB201Accuracies:
        """Accuracies of a genotype (op names in edge order) or an NB201 arch string."""
        text = arch if isinstance(arch, str) else arch_str(arch)
        parse_arch_str(text)  # a malformed string is an error, not a silent "not in the benchmark"
        if text in self._cache:
            return self._cache[text]
        index = self.api.query_index_by_arch(text)
        if index < 0:
            raise BenchmarkError(f"architecture {text} is not in the benchmark at {self.archive_dir}")
        infos: dict[str, dict] = {}
        values: dict[str, float] = {}
        for field, (dataset, key, _) in FIELDS.items():
            if dataset not in infos:
                infos[dataset] = self._more_info(index, dataset, text)
            if key not in infos[dataset]:
                raise BenchmarkError(f"benchmark entry {index:06d} ({text}) has no {key} for {dataset}")
            values[field] = float(infos[dataset][key])
        result = NB201Accuracies(arch_str=text, index=index, **values)
        self._cache[text] = result
        return result

    def _more_info(self, index: int, dataset: str, text: str) -> dict:
        try:
            return self.api.get_more_info(index, dataset, hp="200", is_random=False)
        except AssertionError as e:  # nats_bench asserts on a missing per-architecture file
            raise BenchmarkError(f"the benchmark at {self.archive_dir} lacks the results file of architecture "
                                 f"{index:06d} ({text}): the folder is incomplete; re-extract it") from e
        except KeyError as e:
            raise BenchmarkError(f"benchmark entry {index:06d} ({text}) has no 200-epoch results for {dataset}") from e


def open_benchmark(path: str | os.PathLike | None) -> NB201Benchmark | None:
    """The benchmark at ``path``, or None when ``path`` is None (look-up disabled; the caller says so in its log)."""
    return None if path is None else NB201Benchmark(path)


def describe_fields() -> str:
    """One line per reported field saying exactly which number it is (for logs and tables)."""
    lines = [PROTOCOL]
    lines += [f"  {field}: {desc} [{dataset} / get_more_info['{key}']]" for field, (dataset, key, desc) in FIELDS.items()]
    return "\n".join(lines)


# --- test fixture in the real on-disk format ----------------------------------------------------------------------

AccuracySpec = float | Mapping[str, float | Sequence[float]]


def all_arch_strs(op_names: Sequence[str] = OP_NAMES) -> list[str]:
    """All 15,625 NB201 arch strings (itertools-product order — *not* the benchmark's order)."""
    return [arch_str(ops) for ops in product(op_names, repeat=6)]


def _pbz2_dump(obj: object, path: Path) -> None:
    # the format nats_bench.pickle_save writes: bz2-compressed pickle, protocol 4
    with bz2.BZ2File(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)


def write_fake_tss_benchmark(
    folder: str | os.PathLike,
    archs: Mapping[str | Genotype, Mapping[str, AccuracySpec]],
    shuffle_seed: int | None = 0,
    epochs: int = 200,
) -> Path:
    """Write a tiny NATS-Bench topology benchmark in the real fast-mode format and return its archive folder.

    TEST SUPPORT ONLY: the numbers are whatever the caller passes, not NB201 results.

    ``folder/NATS-tss-v1_0-3ffb9-simple/meta.pickle.pbz2`` lists all 15,625 arch strings (shuffled with
    ``shuffle_seed`` so that nothing can rely on a computed index; None keeps product order), and
    ``{index:06d}.pickle.pbz2`` is written for each architecture in ``archs`` only, holding hp ``"200"`` results
    built with nats_bench's own ``ResultsCount`` / ``ArchResults`` classes.

    ``archs[arch][dataset]`` (dataset in :data:`DATASETS`; missing datasets are not written) is a float used for every
    evaluation set and seed, or ``{eval_name: float | [float per seed]}`` with eval names from :data:`EVAL_NAMES`
    (absent eval names get the mean of the given ones). A list gives one value per seed (seeds 777, 888, ...);
    the benchmark's mean over seeds is then what a look-up returns. Every epoch of the curve holds the final value.
    """
    from nats_bench.api_utils import ArchResults, ResultsCount

    names = all_arch_strs()
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(names)
    archive = Path(folder) / TSS_SIMPLE_DIR
    archive.mkdir(parents=True, exist_ok=True)
    _pbz2_dump({"meta_archs": names, "total_archs": len(names), "arch2infos": None, "evaluated_indexes": set()},
               archive / META_FILE)
    position = {name: i for i, name in enumerate(names)}
    for arch, per_dataset in archs.items():
        text = arch if isinstance(arch, str) else arch_str(arch)
        parse_arch_str(text)
        index = position[text]
        results = ArchResults(index, text)
        for dataset, spec in per_dataset.items():
            if dataset not in EVAL_NAMES:
                raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
            per_eval = _per_eval_values(dataset, spec)
            num_seeds = len(next(iter(per_eval.values())))
            for s in range(num_seeds):
                seed = 777 + 111 * s
                acc = {name: vals[s] for name, vals in per_eval.items()}
                results.update(dataset, seed, _results_count(ResultsCount, dataset, seed, text, acc, epochs))
        _pbz2_dump({"200": results.state_dict()}, archive / f"{index:06d}.pickle.pbz2")
    return archive


def _per_eval_values(dataset: str, spec: AccuracySpec) -> dict[str, list[float]]:
    names = EVAL_NAMES[dataset]
    if isinstance(spec, (int, float)):
        return {name: [float(spec)] for name in names}
    given = {name: [float(v)] if isinstance(v, (int, float)) else [float(x) for x in v] for name, v in spec.items()}
    unknown = set(given) - set(names)
    if unknown:
        raise ValueError(f"{dataset} has eval sets {names}, not {sorted(unknown)}")
    lengths = {len(v) for v in given.values()}
    if len(lengths) != 1:
        raise ValueError(f"{dataset}: every eval set needs the same number of seed values")
    (n,) = lengths
    fill = [sum(v[s] for v in given.values()) / len(given) for s in range(n)]
    return {name: given.get(name, fill) for name in names}


def _results_count(cls: type, dataset: str, seed: int, text: str, acc: Mapping[str, float], epochs: int):
    train_acc = {e: min(100.0, max(acc.values()) + 5.0) for e in range(epochs)}
    train_loss = {e: 0.5 for e in range(epochs)}
    config = {"channel": 16, "num_cells": 5, "arch_str": text, "class_num": NUM_CLASSES[dataset]}
    result = cls(dataset, None, train_acc, train_loss, params=0.5, flop=50.0, arch_config=config, seed=seed,
                 epochs=epochs, latency=[0.01])
    result.update_train_info(train_acc, None, train_loss, {e: 1.0 for e in range(epochs)})
    keys = [f"{name}@{e}" for name in acc for e in range(epochs)]
    result.update_eval({k: acc[k.split("@")[0]] for k in keys}, dict.fromkeys(keys, 1.0), dict.fromkeys(keys, 0.1))
    return result
