"""``python -m tasks.gan +exp=<name> [scale=demo|smoke] [overrides]``: train and evaluate a conditional GAN."""

from tasks.common.app import launch

from .config import GanConfig
from .train import train

if __name__ == "__main__":
    launch("gan", GanConfig, train)
