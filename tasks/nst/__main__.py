"""``python -m tasks.nst +exp=<adain|saadain|sain> [scale=demo|smoke] [overrides]``: train a style-transfer decoder
and report its training and validation losses."""

from tasks.common.app import launch

from .config import NSTConfig
from .train import train

if __name__ == "__main__":
    launch("nst", NSTConfig, train)
