"""``python -m tasks.nas +exp=<name> [data=cifar100|imagenet16_120|cifar10] [overrides]``: search on NAS-Bench-201."""

from tasks.common.app import launch

from .config import NasConfig
from .search import search

if __name__ == "__main__":
    launch("nas", NasConfig, search)
