"""``python -m tasks.adv +exp=<name> [overrides]``: adversarial training with BN / AuxBN / SaAuxBN, evaluated under
PGD-10/20 through each branch. ``python -m tasks.adv.evaluate <checkpoint>`` evaluates a saved model."""

from tasks.common.app import launch

from .config import AdvConfig
from .train import train

if __name__ == "__main__":
    launch("adv", AdvConfig, train)
