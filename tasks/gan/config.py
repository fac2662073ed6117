"""Schema of the GAN task (``conf/gan.yaml``): model, training protocol, evaluation protocol and data options."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tasks.common.config import DataConfig, RunConfig, register_schema


def choice(value: object) -> str:
    """An enum option of a composed config as its plain name (``str()`` of an enum gives ``Class.name``)."""
    return str(getattr(value, "value", value))


class EmaBuffers(str, Enum):
    live = "live"  # EMA of parameters only; evaluation uses the live G's BN statistics (official SaBN/SNGAN/AutoGAN)
    ema = "ema"  # parameters and buffers averaged (BigGAN-PyTorch's utils.ema)


class BNMode(str, Enum):
    eval = "eval"  # G in eval mode: BN running statistics (official SaBN/SNGAN/AutoGAN evaluation)
    batch = "batch"  # BN statistics of each sampling batch (BigGAN-PyTorch without --G_eval_mode)


class EvalWeights(str, Enum):
    ema = "ema"  # the generator EMA (what the official code evaluates)
    live = "live"  # the generator being trained


class Split(str, Enum):
    train = "train"
    test = "test"


@dataclass
class GanModelConfig:
    name: str = "sngan32"  # a tasks.gan.models registry name: sngan32 autogan32 biggan32 sngan128
    gf_dim: int = 256  # generator width (BigGAN: G_ch, ×4 inside; SNGAN-128: ×8 at the bottom)
    df_dim: int = 128  # discriminator width (BigGAN: D_ch, ×4 inside)
    width_factor: float = 1.0  # multiplies gf_dim and df_dim; scale presets shrink every model alike
    latent_dim: int = 128
    bottom_width: int = 4
    resolution: int = 32  # side of the generated images; must match the architecture (also sets data.image_size)
    init: str = "xavier_uniform"  # xavier_uniform (SNGAN/AutoGAN/SaBN) | normal | orth | N02 (BigGAN)


@dataclass
class GanTrainConfig:
    g_steps: int = 50_000  # generator steps (each after n_critic discriminator steps)
    n_critic: int = 5  # discriminator steps per generator step
    d_batch_size: int = 64  # real images per D step (and as many fakes)
    g_batch_size: int = 128  # fakes per G step
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0  # Adam betas of both optimisers (floats: torch rejects an int 0)
    beta2: float = 0.9
    ema_decay: float = 0.999
    ema_start: int = 0  # G steps whose EMA update is a hard copy (BigGAN: 1000)
    ema_buffers: EmaBuffers = EmaBuffers.live
    joint_d_forward: bool = False  # one D call on real+fake (BigGAN's G_D); False: two calls (SNGAN: 2 SN updates)


@dataclass
class InceptionConfig:
    enabled: bool = True  # IS and FID whenever the TF-FID Inception weights can be had
    # pytorch-fid's pt_inception-2015-12-05-6726825d.pth; None: the torch hub cache, else a download (if allowed)
    weights: str | None = None
    download: bool = True  # let pytorch-fid's URL download into the torch hub cache when no local file is found
    batch_size: int = 200
    is_splits: int = 10


@dataclass
class ClassifierConfig:
    enabled: bool = True  # class_acc and fd_classifier with a small CNN trained on the run's train split
    width: int = 32
    epochs: int = 15
    batch_size: int = 128
    lr: float = 3e-3  # Adam, cosine decay to 0; the only augmentation is random shifts of up to 2 pixels
    seed: int = 0


@dataclass
class GanEvalConfig:
    every: int = 5000  # G steps between evaluations during training; 0 = only at the end
    num_samples: int = 50_000  # samples per evaluation, uniform random labels
    batch_size: int = 100  # sampling batch (the BN batch when bn_mode=batch)
    bn_mode: BNMode = BNMode.eval
    weights: EvalWeights = EvalWeights.ema
    reference_split: Split = Split.train  # real images the Fréchet distances compare against
    reference_count: int | None = None  # None: the whole split
    seed: int = 0  # z and labels of the evaluation samples (the same at every evaluation)
    grid_per_class: int = 8  # sample-grid columns
    grid_max_classes: int = 10  # sample-grid rows (classes evenly spaced over all classes)
    cache_dir: str = ".cache/sabn"  # feature classifiers and reference statistics
    inception: InceptionConfig = field(default_factory=InceptionConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


@dataclass
class GanDataConfig(DataConfig):
    # imagenet_dogcat only: a text file with one class folder name per line, in label order
    classes_file: str | None = None
    # imagenet_dogcat only: [first, last] positions (inclusive) in the sorted list of class folders, e.g. [151, 293]
    # for SNGAN-projection's dogs+cats in a full ILSVRC-2012 train folder; None: every class folder
    class_range: list[int] | None = None


@dataclass
class GanConfig(RunConfig):
    task: str = "gan"
    data: GanDataConfig = field(default_factory=GanDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    eval: GanEvalConfig = field(default_factory=GanEvalConfig)


register_schema("gan", GanConfig)
