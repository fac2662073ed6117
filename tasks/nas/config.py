"""Schema of the NAS task (``conf/nas.yaml``): supernet, search protocol, and where splits and benchmark live."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import RunConfig, register_schema


@dataclass
class NasModelConfig:
    channels: int = 16  # C of the first stage; the stages use C, 2C, 4C
    num_cells: int = 5  # search cells per stage (15 in all at 5)
    track_running_stats: bool = False  # search-cell norms; official: False (batch statistics, also in eval mode)
    bn_affine: bool = False  # affine of the plain `bn` variant's search-cell norms (official DARTS: False)
    condition_mode: str = "sample"  # DARTS: op choices that index the conditional norms: sample | argmax


@dataclass
class NasTrainConfig:
    algorithm: str = "darts"  # darts (DARTS-V1, first order) | darts_v2 (unrolled second-order α step) | gdas
    order: str = "w_first"  # w_first: w-step then α-step | alpha_first: α-step then w-step (NB201 DARTS-V2.py)
    epochs: int = 50  # length of the cosine LR schedule (and of GDAS's τ schedule)
    stop_epoch: int | None = 35  # the search stops after this many epochs; null = all `epochs`
    epoch_steps: int | None = None  # steps per search epoch; null = one pass over the weights' split
    batch_size: int = 64  # the weights' batch; the α batch has the same size
    lr: float = 0.025
    lr_min: float = 0.001  # cosine annealing (set once per epoch) from lr to lr_min over `epochs`
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5.0e-4
    grad_clip: float | None = 5.0  # max global norm of the weights' gradient; null = no clipping
    arch_lr: float = 3.0e-4  # Adam on α
    arch_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    arch_weight_decay: float = 1.0e-3
    arch_eps: float = 1.0e-8
    tau_max: float = 10.0  # GDAS Gumbel-softmax temperature, linear from tau_max (first epoch) to tau_min (last)
    tau_min: float = 0.1
    unrolled_r: float = 0.01  # DARTS-V2: finite-difference radius of the Hessian-vector product (R = r / ‖v‖)
    crop_padding: int | None = None  # random-crop padding of the search augmentation; null = image_size / 8
    flip: bool = True  # random horizontal flip in the search augmentation
    eval_batch_size: int = 512  # supernet accuracy on the α split, every epoch


@dataclass
class NasSearchConfig:
    split_dir: str = "data/nb201-splits"  # folder with NAS-Bench-201's split files (cifar-split.txt, ...)
    benchmark_path: str | None = None  # NATS-Bench tss fast-mode folder; null = search without the NB201 look-up
    holdout_fraction: float = 0.5  # datasets without an NB201 split file: share of the train set used for α
    split_seed: int = 0  # ... and the seed of that fixed random split


@dataclass
class NasConfig(RunConfig):
    task: str = "nas"
    model: NasModelConfig = field(default_factory=NasModelConfig)
    train: NasTrainConfig = field(default_factory=NasTrainConfig)
    nas: NasSearchConfig = field(default_factory=NasSearchConfig)


register_schema("nas", NasConfig)
