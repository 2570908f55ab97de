"""Declared dependencies against the code: every third-party module imported is declared (by
``importlib.metadata.packages_distributions``), every runtime requirement has a use, the web
app and ONNX stay optional extras (the package imports without them, and a missing one is a
one-line message naming the extra), and ``make`` installs every extra from the lock file."""

from __future__ import annotations

import ast
import configparser
import json
import re
import subprocess
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from pconv_lightning import PConvUNet
from pconv_lightning.cli import main
from pconv_lightning.export import export_onnx
from pconv_lightning.extras import MissingExtraError
from pconv_lightning.inference import load_engine

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pconv_lightning"
SETUP = configparser.ConfigParser()
SETUP.read(REPO / "setup.cfg")
# the modules of [app], [export] and [sweep]
OPTIONAL = {"gradio", "onnx", "onnxruntime", "onnxscript", "sweeps"}
# Runtime requirements the package uses without importing them by name.
INDIRECT = {
    "jsonargparse": "LightningCLI parses the configs with it",
    "wandb": "WandbLogger, the logger of every config",
    "tensorboard": "TensorBoardLogger, which ImageGridLogger also writes to",
    "kornia": "batch augmentation on the GPU (the packed data path)",
}


def requirements(value: str) -> dict[str, Requirement]:
    lines = (line.strip() for line in value.splitlines())
    reqs = (Requirement(line) for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(r.name): r for r in reqs}


RUNTIME = requirements(SETUP["options"]["install_requires"])
EXTRAS = {name: requirements(value) for name, value in SETUP["options.extras_require"].items()}
DECLARED = set(RUNTIME).union(*EXTRAS.values())


def imports(root: Path) -> dict[str, set[str]]:
    """Third-party top-level modules imported under ``root`` (anywhere in a file, and the
    ``require("module", ...)`` calls) -> the files importing them."""
    local = {p.stem for p in root.rglob("*.py")} | {"pconv_lightning"}
    found: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            elif is_require(node):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def is_require(node: ast.AST) -> bool:
    """A ``require("module", "extra", ...)`` call (string literals, so this test can read it)."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require"):
        return False
    assert all(isinstance(a, ast.Constant) for a in node.args[:2]), ast.unparse(node)
    return True


@cache
def module_distributions() -> dict[str, list[str]]:
    return packages_distributions()  # scans every installed distribution: once


def distributions(module: str) -> set[str]:
    return {canonicalize_name(d) for d in module_distributions().get(module, [])}


def require_calls() -> list[tuple[str, str]]:
    """(module, extra) of every ``require`` call in the package."""
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if is_require(node):
                calls.append((node.args[0].value, node.args[1].value))
    return calls


def test_every_third_party_import_of_the_package_is_declared():
    found = imports(PACKAGE)
    assert {"torch", "pandas", "yaml", "gradio", "onnxruntime"} <= set(found)
    undeclared = {m: sorted(f) for m, f in found.items() if not distributions(m) & DECLARED}
    assert not undeclared, f"imported but not in setup.cfg: {undeclared}"


@pytest.mark.parametrize("folder", ["tests", "benchmarks", "experiments"])
def test_imports_of_tests_benchmarks_and_scripts_are_declared(folder):
    found = imports(REPO / folder)
    undeclared = {m: sorted(f) for m, f in found.items() if not distributions(m) & DECLARED}
    assert not undeclared, f"imported but not in setup.cfg: {undeclared}"


def test_every_requirement_has_a_use():
    used = set().union(*(distributions(m) for m in imports(PACKAGE)))
    unused = set(RUNTIME) - used - set(INDIRECT)
    assert not unused, f"declared in install_requires, never used: {sorted(unused)}"
    assert set(INDIRECT) <= set(RUNTIME)
    for extra in ("app", "export", "sweep"):
        assert set(EXTRAS[extra]) <= used, extra


def test_optional_modules_are_extras_and_required_with_their_extra():
    for module in OPTIONAL:
        assert not distributions(module) & set(RUNTIME), module
    calls = require_calls()
    assert {m for m, _ in calls} == OPTIONAL
    for module, extra in calls:
        assert distributions(module) & set(EXTRAS[extra]), (module, extra)


def test_dev_extra_brings_every_other_extra():
    (self_ref,) = [r for r in EXTRAS["dev"].values() if r.name == SETUP["metadata"]["name"]]
    assert self_ref.extras == set(EXTRAS) - {"dev"}


def test_lock_file_pins_every_declared_requirement():
    pins = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip()):
            pins[canonicalize_name(match[1])] = Version(match[2])
    for name, req in {**RUNTIME, **EXTRAS["app"], **EXTRAS["export"], **EXTRAS["dev"]}.items():
        if req.name == SETUP["metadata"]["name"]:
            continue
        assert name in pins, f"{name} is declared but not pinned in requirements/lock.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (str(req), pins[name])


def test_bootstrap_installs_the_package_with_every_extra():
    script = (REPO / "scripts" / "bootstrap.sh").read_text()
    (extras,) = re.findall(r'-e "\.\[([a-z,]+)\]"', script)
    assert set(extras.split(",")) == set(EXTRAS)
    assert "-r requirements/lock.txt" in script


@pytest.mark.slow
def test_package_imports_without_the_extras():
    """A lean install: every module but the Gradio page imports with the extras missing."""
    code = f"""
import importlib, json, pkgutil, sys
for name in {sorted(OPTIONAL)!r}:
    sys.modules[name] = None  # import fails as if not installed
import pconv_lightning
failed = {{}}
for info in pkgutil.walk_packages(pconv_lightning.__path__, "pconv_lightning."):
    try:
        importlib.import_module(info.name)
    except ImportError as err:
        failed[info.name] = str(err)
print(json.dumps(failed))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(failed) == {"pconv_lightning.app.page"}, failed


def test_pconv_app_without_gradio_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.setattr(sys, "argv", ["pconv", "app", "--checkpoint", "missing.ckpt"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    message = str(exit_info.value.code)
    assert message.startswith("pconv: error: pconv app needs gradio")
    assert message.endswith('pip install "pconv-lightning[app]"') and "\n" not in message


def test_onnx_without_the_export_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r'pip install "pconv-lightning\[export\]"'):
        load_engine(tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MissingExtraError, match=r"ONNX export needs onnxscript"):
        export_onnx(PConvUNet(layers=3), tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
