"""scripts/reproduce.py plans one run per row × variant × seed and dedupes runs shared by several tables."""

from __future__ import annotations

import subprocess
import sys

from tasks.common.app import REPO_ROOT
from tasks.common.tables import load_specs


def test_reproduce_plans_every_row_variant_and_seed_once():
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "reproduce.py"), "adv_clean", "adv_adv", "nas", "--dry-run",
         "--seeds", "0", "1", "--set", "device=cpu"], capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    specs = load_specs()
    adv_rows = {r["exp"] for r in specs["adv_clean"]["rows"]} | {r["exp"] for r in specs["adv_adv"]["rows"]}
    assert len(lines) == len(adv_rows) * 2 + len(specs["nas"]["rows"]) * 2 * 2
    assert any("python -m tasks.nas +exp=darts_sabn scale=full seed=1 data=imagenet16_120 device=cpu" in ln
               for ln in lines)


def test_reproduce_rejects_an_unknown_table():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "reproduce.py"), "nope", "--dry-run"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "unknown table 'nope'" in result.stderr
