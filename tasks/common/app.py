"""Task entry points: Hydra composition with one-line errors.

``python -m tasks.<task> +exp=<name> [group=option ...] [key=value ...]`` composes ``conf/<task>.yaml`` with the
shared groups in ``conf/`` (``device``, ``logger``, ``norm``, ``data``) and the task's own groups in
``conf/<task>/`` (``exp``, ``scale``, ``model``, ``train`` ...). Before Hydra runs, the command line is checked:
an unknown experiment, group option, key, or a value of the wrong type is reported in one line naming the fix,
with exit status 2 and no traceback. Multirun (``-m``) and Hydra's own flags go straight to Hydra.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from .config import SCHEMAS, register_schema, validate
from .errors import RunFinished, UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"
EXIT_USER_ERROR = 2

# `hydra.searchpath` in conf/<task>.yaml uses this to add conf/<task>/ as a second config root, so the task's
# groups are addressed with short names (`scale=demo`, `+exp=sngan_sabn`).
OmegaConf.register_new_resolver("suite_conf_dir", lambda task: str(CONF_DIR / task), replace=True)


def _roots(task: str) -> list[Path]:
    return [CONF_DIR, CONF_DIR / task]


def group_options(task: str, group: str) -> list[str]:
    """The options of a config group of ``task`` (file names without ``.yaml``), from every config root."""
    opts: set[str] = set()
    for root in _roots(task):
        folder = root / group
        if folder.is_dir():
            opts |= {p.stem for p in folder.glob("*.yaml")}
    return sorted(opts)


def _is_group(task: str, key: str) -> bool:
    return any((root / key).is_dir() for root in _roots(task))


def _check_group_choices(task: str, overrides: list[str]) -> None:
    for ov in overrides:
        if "=" not in ov:
            continue
        key, value = ov.split("=", 1)
        key = key.lstrip("+~")
        if "." in key or "@" in key or not _is_group(task, key) or value in ("", "null"):
            continue
        options = group_options(task, key)
        if value not in options:
            what = f"experiment {value!r} for task {task!r}" if key == "exp" else f"option {value!r} for {key!r}"
            hint = difflib.get_close_matches(value, options, n=1)
            fix = f" — did you mean {hint[0]!r}?" if hint else ""
            raise UserError(f"unknown {what}; available: {', '.join(options) or '(none)'}{fix}")


def _key_suggestion(cfg_probe: DictConfig | None, full_key: str) -> str:
    if cfg_probe is None or not full_key:
        return ""
    parent, _, leaf = full_key.rpartition(".")
    node = OmegaConf.select(cfg_probe, parent) if parent else cfg_probe
    if not isinstance(node, DictConfig):
        return ""
    hint = difflib.get_close_matches(leaf, [str(k) for k in node], n=1)
    return f" — did you mean '{parent + '.' if parent else ''}{hint[0]}'?" if hint else ""


def _describe(e: BaseException, probe: DictConfig | None) -> str:
    """One line for a composition/validation error."""
    cause: BaseException = e
    while cause.__cause__ is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__
    full_key = getattr(cause, "full_key", None) or ""
    if isinstance(cause, OmegaConfBaseException):
        msg = getattr(cause, "msg", None) or str(cause)
        msg = msg.strip().splitlines()[0]
        if isinstance(cause, ConfigKeyError) or "not in struct" in msg or "not in '" in msg:
            return f"unknown config key '{full_key}'{_key_suggestion(probe, full_key)}"
        return f"{full_key}: {msg}" if full_key else msg
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return "; ".join(lines[:2]) if lines else type(e).__name__


def ensure_schema(task: str) -> None:
    """Register the task's schema (each ``tasks/<task>/config.py`` registers itself on import)."""
    if task not in SCHEMAS:
        importlib.import_module(f"tasks.{task}.config")
    if task not in SCHEMAS:
        raise UserError(f"tasks/{task}/config.py does not register a schema for task {task!r}")


def compose_config(task: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<task>.yaml`` with ``overrides`` outside a Hydra run (tests, preflight, tools) and resolve it.

    Raises :class:`UserError` with a one-line message on any composition or validation error.
    """
    _check_group_choices(task, overrides)
    ensure_schema(task)
    GlobalHydra.instance().clear()
    probe: DictConfig | None = None
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            try:
                probe = compose(config_name=task)
            except Exception:
                probe = None
            cfg = compose(config_name=task, overrides=overrides)
        validate(task, cfg)
        OmegaConf.resolve(cfg)
        return cfg
    except UserError:
        raise
    except Exception as e:
        raise UserError(_describe(e, probe)) from e
    finally:
        GlobalHydra.instance().clear()


def _hydra_handles_itself(argv: list[str]) -> bool:
    return any(a.startswith("-") for a in argv)


def launch(task: str, schema: type, run: Callable[[DictConfig], Any]) -> None:
    """The ``python -m tasks.<task>`` entry point: check the command line, then hand over to ``@hydra.main``."""
    register_schema(task, schema)
    argv = sys.argv[1:]
    if not _hydra_handles_itself(argv):
        overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
        try:
            compose_config(task, overrides)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=task)
    def _main(cfg: DictConfig) -> Any:
        return run_guarded(task, run, cfg)

    _main()


def run_guarded(task: str, run: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run a task function, turning expected user errors into one line and exit status 2."""
    try:
        return run(cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except RunFinished as e:
        print(f"{task}: this run has already finished; results are in {e.run_dir}/results.json "
              "(pass run_dir=... or delete that folder to train again)")
        return None


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``error: ...``) and exit status 2, like the task entry points."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def main_guarded(main: Callable[[], int | None]) -> NoReturn:
    """Run a command-line ``main()`` (the tools beside the training entry points); expected errors become one line
    and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
