"""The layer rules of ARCHITECTURE.md hold: import-linter's contracts in pyproject.toml (layers
from the entry points down to `domain`, no import cycles between sibling packages, and
`policies/` and `providers/` importing nothing of the service) are all kept, and every
package and module of `orchestrator` is placed in a layer, so a new one cannot slip past
the rules."""

from __future__ import annotations

import logging
import os
import pkgutil
import tomllib
from pathlib import Path

import orchestrator

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_every_import_contract_is_kept(capsys):
    from importlinter.cli import lint_imports

    cwd = os.getcwd()
    # import-linter configures logging with dictConfig, which disables every logger that exists
    # already: the service's loggers would then be silent for every test run after this one.
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    was_disabled = {lg: lg.disabled for lg in loggers}
    os.chdir(ROOT)  # import-linter reads pyproject.toml from the working directory
    try:
        status = lint_imports(no_cache=True, no_logo=True)
    finally:
        os.chdir(cwd)
        for lg, disabled in was_disabled.items():
            lg.disabled = disabled
    report = capsys.readouterr().out
    assert status == 0, report
    assert "BROKEN" not in report


def test_every_package_of_the_service_has_a_layer():
    layers = next(c for c in _config()["contracts"] if c["id"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    tops = {f"orchestrator.{m.name}" for m in pkgutil.iter_modules(orchestrator.__path__)}
    assert tops - placed == set(), "place each new package or module in a layer of pyproject.toml"
    assert placed - tops == set(), "a layer names a package that no longer exists"
