"""The package regrouped by concept (``app/``, ``checkpoints/``, ``vgg/``, the progress bar
under ``callbacks/``): every dotted path shipped in a config, script or notebook resolves to
the new modules, and the old paths keep working for one release, each with a
DeprecationWarning naming the new one: an import of the old module yields the new module
itself, and a run from before the move (its saved ``config.yaml`` with the old ``class_path``)
resumes with ``pconv fit --ckpt_path``."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import warnings

import pytest
import yaml
from training_helpers import CONFIGS, REPO, tiny_args

import pconv_lightning
from pconv_lightning.cli import TOOLS, cli_main
from pconv_lightning.moved import MODULES

# Files whose dotted paths users copy: configs, sweeps, scripts, notebooks, the docs.
SHIPPED = [
    *(REPO / "experiments").rglob("*.yaml"),
    *(REPO / "experiments").rglob("*.sh"),
    REPO / "pconv_lightning" / "configs" / "base.yaml",
    *(REPO / "scripts").rglob("*.sh"),
    *(REPO / "notebooks").glob("*.ipynb"),
    *(REPO / "docs").glob("*.md"),
    REPO / "README.md",
    REPO / "Makefile",
]
CLASS_PATH = re.compile(r"class_path[\"']?:\s*[\"']?([A-Za-z_][\w.]*)")
RUN_MODULE = re.compile(r"\s-m (pconv_lightning[\w.]*)")


def _shipped_paths(pattern: re.Pattern[str]) -> set[str]:
    return {m for path in SHIPPED for m in pattern.findall(path.read_text())}


def _resolve(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _forget(monkeypatch: pytest.MonkeyPatch, old: str) -> None:
    """Drop ``old`` (an alias) from ``sys.modules`` so that importing it runs the finder again."""
    for name in (old, old.rpartition(".")[0]):
        if name in MODULES:
            monkeypatch.delitem(sys.modules, name, raising=False)


def test_every_shipped_class_path_and_module_resolves_to_a_new_path():
    class_paths = _shipped_paths(CLASS_PATH)
    modules = _shipped_paths(RUN_MODULE)
    assert "pconv_lightning.checkpoints.atomic.AtomicCheckpointIO" in class_paths
    assert "pconv_lightning.vgg.command" in modules  # scripts/bootstrap.sh
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for dotted in class_paths:
            assert isinstance(_resolve(dotted), type), dotted
        for module in modules:
            importlib.import_module(module)
    for dotted in class_paths | modules:
        assert not any(dotted == old or dotted.startswith(f"{old}.") for old in MODULES), dotted


def test_no_code_of_the_project_imports_an_old_path():
    """The aliases are for users' code: the project's own imports use the new paths."""
    old_imports = []
    for folder in ("pconv_lightning", "tests", "benchmarks", "experiments"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                else:
                    continue
                old_imports += [
                    f"{path.relative_to(REPO)}:{node.lineno} {name}"
                    for name in names
                    if any(name == old or name.startswith(f"{old}.") for old in MODULES)
                ]
    assert not old_imports, old_imports


def test_every_tool_and_public_name_resolves():
    for target, _ in TOOLS.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    for name in pconv_lightning.__all__:
        assert getattr(pconv_lightning, name) is not None, name


@pytest.mark.parametrize("old", sorted(MODULES))
def test_an_old_module_path_warns_and_is_the_new_module(old, monkeypatch):
    new = importlib.import_module(MODULES[old])
    _forget(monkeypatch, old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is new
    # one warning per old module imported (pconv_lightning.weights.derive: the package too)
    messages = {str(w.message) for w in caught if w.category is DeprecationWarning}
    assert f"{old} moved to {MODULES[old]}; the old path goes away in the next release" in messages
    assert all(m.split()[0] in MODULES for m in messages), messages
    assert module.__spec__.name == MODULES[old] and module.__name__ == MODULES[old]


def test_old_names_of_the_modules_that_became_packages_warn_and_are_the_same():
    from pconv_lightning.app import command, inputs
    from pconv_lightning.vgg import features

    for package, name, home in [
        ("pconv_lightning.app", "main", command),
        ("pconv_lightning.app", "InpaintError", inputs),
        ("pconv_lightning.app", "editor_inputs", inputs),
        ("pconv_lightning.vgg", "POOL_INDICES", features),
        ("pconv_lightning.vgg", "IMAGENET_MEAN", features),
    ]:
        with pytest.warns(DeprecationWarning, match=f"{package}.{name} moved to {home.__name__}"):
            found = getattr(importlib.import_module(package), name)
        assert found is getattr(home, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from pconv_lightning.vgg import LPIPSVGG, VGG16Features  # the package's own names

    assert VGG16Features is features.VGG16Features is pconv_lightning.VGG16Features
    assert LPIPSVGG.__module__ == "pconv_lightning.vgg.lpips"


def test_the_old_weights_command_still_runs_with_python_m():
    old = "pconv_lightning.weights.command"
    done = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-m", old, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: pconv weights")
    assert "pconv_lightning.weights.command moved to pconv_lightning.vgg.command" in done.stderr


@pytest.mark.slow
def test_a_run_from_before_the_move_resumes_with_its_old_config(tmp_path, monkeypatch):
    """The checkpoint stores only the model's and the data's class paths (none moved); the
    run's ``config.yaml`` beside it stores ``trainer.plugins``, here rewritten to the path
    written before the move, and ``pconv fit --config config.yaml --ckpt_path`` resumes."""
    from pconv_lightning.checkpoints.atomic import AtomicCheckpointIO

    old, new = "pconv_lightning.checkpoint_io", "pconv_lightning.checkpoints.atomic"
    root = tmp_path / "before"
    quickstart = f"--config={CONFIGS / 'quickstart.yaml'}"
    cli_main(["fit", quickstart, *tiny_args(root, steps=2, layers=3), "--trainer.logger=false"])
    config = (root / "config.yaml").read_text()
    assert f"class_path: {new}.AtomicCheckpointIO" in config
    old_config = tmp_path / "config.yaml"
    old_config.write_text(config.replace(new, old))
    plugins = yaml.safe_load(old_config.read_text())["trainer"]["plugins"]
    assert plugins == [{"class_path": f"{old}.AtomicCheckpointIO"}]

    _forget(monkeypatch, old)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        cli = cli_main(
            [
                "fit",
                f"--config={old_config}",
                f"--trainer.default_root_dir={tmp_path / 'after'}",
                "--trainer.max_steps=3",
                f"--ckpt_path={root / 'checkpoints' / 'last.ckpt'}",
            ]
        )
    assert cli.trainer.global_step == 3
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
