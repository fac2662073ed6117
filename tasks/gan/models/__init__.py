"""GAN generators and discriminators of the SaBN paper (SNGAN-32, AutoGAN-32, BigGAN-32, SNGAN-128), their
initialisation schemes and the model registry.

Official SNGAN/AutoGAN variants have exactly the official SaBN code's state-dict keys, so model-zoo checkpoints
load with ``strict=True`` (see :func:`tasks.gan.checkpoint.load_generator_checkpoint`).
"""

from .autogan import AutoGANCell, AutoGANGenerator32
from .biggan import (
    BigGANConditionalBatchNorm2d,
    BigGANDBlock,
    BigGANDiscriminator32,
    BigGANGBlock,
    BigGANGenerator32,
)
from .common import apply_norm, build_block_norm
from .init import INIT_SCHEMES, init_weights
from .registry import MODELS, GANSpec, build_gan, model_names
from .sngan import (
    DisBlock,
    GenBlock,
    OptimizedDisBlock,
    SNGANDiscriminator,
    SNGANDiscriminator32,
    SNGANDiscriminator128,
    SNGANGenerator,
    SNGANGenerator32,
    SNGANGenerator128,
)

__all__ = [
    "INIT_SCHEMES",
    "MODELS",
    "AutoGANCell",
    "AutoGANGenerator32",
    "BigGANConditionalBatchNorm2d",
    "BigGANDBlock",
    "BigGANDiscriminator32",
    "BigGANGBlock",
    "BigGANGenerator32",
    "DisBlock",
    "GANSpec",
    "GenBlock",
    "OptimizedDisBlock",
    "SNGANDiscriminator",
    "SNGANDiscriminator32",
    "SNGANDiscriminator128",
    "SNGANGenerator",
    "SNGANGenerator32",
    "SNGANGenerator128",
    "apply_norm",
    "build_block_norm",
    "build_gan",
    "init_weights",
    "model_names",
]
