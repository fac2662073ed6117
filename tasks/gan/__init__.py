"""Conditional image generation with SaBN: GAN models, losses, generator EMA, checkpoint loading, training,
evaluation (IS/FID and a dataset classifier's metrics), sampling and the CPU demo.

Importing the package registers the ``imagenet_dogcat`` dataset (``tasks.gan.data``).
"""

from . import data as data
