"""NB201 look-up through the real nats_bench API on a fixture in the real fast-mode on-disk format."""

from __future__ import annotations

import bz2
import pickle

import nats_bench
import pytest
import torch

from tasks.common.errors import UserError
from tasks.nas.benchmark import (
    FIELDS,
    BenchmarkError,
    NB201Benchmark,
    all_arch_strs,
    describe_fields,
    open_benchmark,
    write_fake_tss_benchmark,
)
from tasks.nas.search_space import OP_NAMES, arch_str
from tasks.nas.supernet import NB201SuperNet

GENOTYPE = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
ARCH = arch_str(GENOTYPE)
OTHER = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
MISSING_FILE = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # listed in meta, no results file

SPEC = {
    ARCH: {
        "cifar10-valid": {"x-valid": 90.1, "ori-test": 90.4},
        "cifar10": 93.7,
        # two seeds: the look-up reports their mean
        "cifar100": {"x-valid": [70.0, 72.0], "x-test": [71.0, 73.0], "ori-test": [70.5, 72.5]},
        "ImageNet16-120": {"x-valid": 44.1, "x-test": 45.3, "ori-test": 44.7},
    },
    OTHER: {"cifar10-valid": 10.0, "cifar10": 10.0, "cifar100": 1.0, "ImageNet16-120": 0.83},
}


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb201")
    write_fake_tss_benchmark(root, SPEC)
    return root


def test_fixture_is_the_real_fast_mode_format(bench_dir):
    archive = bench_dir / "NATS-tss-v1_0-3ffb9-simple"
    with bz2.BZ2File(archive / "meta.pickle.pbz2") as f:
        meta = pickle.load(f)
    assert set(meta) == {"meta_archs", "total_archs", "arch2infos", "evaluated_indexes"}
    assert meta["total_archs"] == len(meta["meta_archs"]) == 15625
    assert sorted(meta["meta_archs"]) == sorted(all_arch_strs())
    assert meta["meta_archs"] != all_arch_strs()  # shuffled: nothing may rely on product order
    assert len(list(archive.glob("*.pickle.pbz2"))) == 1 + 2
    api = nats_bench.create(str(archive), "tss", fast_mode=True, verbose=False)
    index = api.query_index_by_arch(ARCH)
    info = api.get_more_info(index, "cifar10", hp="200", is_random=False)
    assert info["test-accuracy"] == pytest.approx(93.7)


def test_lookup_of_a_derived_genotype_returns_the_fixture_numbers(bench_dir):
    model = NB201SuperNet(channels=4, num_cells=1, num_classes=3)
    with torch.no_grad():
        model.arch_parameters.zero_()
        for e, op in enumerate(GENOTYPE):
            model.arch_parameters[e, OP_NAMES.index(op)] = 1.0
    bench = open_benchmark(bench_dir)
    acc = bench.query(model.genotype())
    assert acc.arch_str == ARCH == model.arch_str()
    assert acc.index == nats_bench.create(str(bench.archive_dir), "tss", True, False).query_index_by_arch(ARCH)
    assert acc.index != all_arch_strs().index(ARCH)
    assert acc.cifar10_valid == pytest.approx(90.1)  # cifar10-valid x-valid
    assert acc.cifar10_test == pytest.approx(93.7)  # cifar10 ori-test
    assert acc.cifar100_test == pytest.approx(71.5)  # ori-test, mean of two seeds
    assert acc.cifar100_xtest == pytest.approx(72.0)  # x-test
    assert acc.imagenet16_test == pytest.approx(44.7)
    assert acc.imagenet16_xtest == pytest.approx(45.3)
    assert bench.query(ARCH) is acc  # cached
    assert set(acc.as_dict()) == {"arch_str", "index", *FIELDS}


def test_benchmark_accepts_the_archive_folder_itself(bench_dir):
    bench = NB201Benchmark(bench_dir / "NATS-tss-v1_0-3ffb9-simple")
    assert len(bench) == 15625
    assert bench.query(OTHER).imagenet16_test == pytest.approx(0.83)


def test_missing_benchmark_is_a_one_line_error_naming_the_fix(tmp_path):
    with pytest.raises(BenchmarkError) as info:
        open_benchmark(tmp_path / "nowhere")
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message
    assert "NATS-tss-v1_0-3ffb9-simple" in message and "null" in message


def test_no_path_disables_the_lookup():
    assert open_benchmark(None) is None


def test_incomplete_benchmark_and_bad_strings_are_clear_errors(bench_dir):
    bench = open_benchmark(bench_dir)
    with pytest.raises(BenchmarkError, match="lacks the results file"):
        bench.query(MISSING_FILE)
    with pytest.raises(ValueError, match="invalid arch string"):
        bench.query("|nor_conv_3x3~0|")


def test_field_descriptions_say_which_number_is_reported():
    text = describe_fields()
    assert "hp=200" in text and "ori-test" in text and "x-valid" in text
