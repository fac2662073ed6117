"""``python -m tasks.cls +exp=<name> [overrides]``: train and evaluate an image classifier."""

from tasks.common.app import launch

from .config import ClsConfig
from .train import train

if __name__ == "__main__":
    launch("cls", ClsConfig, train)
