"""Module paths that moved when the package was regrouped by concept (one package per concept:
``app/``, ``checkpoints/``, ``vgg/``, the progress bar under ``callbacks/``). The old dotted
paths keep working for one release, with a :class:`DeprecationWarning` naming the new one.

An old module path is an alias, not a file: ``import pconv_lightning.checkpoint_io`` returns
the module :mod:`pconv_lightning.checkpoints.atomic` itself, so a ``class_path`` with the old
path (a user's YAML, a run's saved ``config.yaml``) builds the very same class. The old modules
``pconv_lightning.app`` and ``pconv_lightning.vgg`` are packages now; their old names are
served by :func:`moved_names`. Torch-free: :mod:`pconv_lightning` installs the aliases on import.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

# old module path -> new module path
MODULES = {
    "pconv_lightning.app_inputs": "pconv_lightning.app.inputs",
    "pconv_lightning.app_limits": "pconv_lightning.app.limits",
    "pconv_lightning.app_page": "pconv_lightning.app.page",
    "pconv_lightning.checkpoint": "pconv_lightning.checkpoints.network",
    "pconv_lightning.checkpoint_io": "pconv_lightning.checkpoints.atomic",
    "pconv_lightning.pieces": "pconv_lightning.checkpoints.pieces",
    "pconv_lightning.reference": "pconv_lightning.checkpoints.reference",
    "pconv_lightning.resume": "pconv_lightning.checkpoints.resume",
    "pconv_lightning.lpips_vgg": "pconv_lightning.vgg.lpips",
    "pconv_lightning.weights": "pconv_lightning.vgg",
    "pconv_lightning.weights.command": "pconv_lightning.vgg.command",
    "pconv_lightning.weights.derive": "pconv_lightning.vgg.derive",
    "pconv_lightning.weights.resolve": "pconv_lightning.vgg.resolve",
    "pconv_lightning.weights.safe_pickle": "pconv_lightning.vgg.safe_pickle",
    "pconv_lightning.progress": "pconv_lightning.callbacks.progress",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} moved to {new}; the old path goes away in the next release",
        DeprecationWarning,
        stacklevel=3,
    )


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds each old path of :data:`MODULES` and loads it as the new module itself."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, MODULES[spec.name])
        module = importlib.import_module(MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system sets the alias spec on it
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = module.__spec__.loader_state  # the module's own spec back

    def get_code(self, fullname: str) -> CodeType | None:
        """The new module's code: ``python -m OLD.PATH`` runs it."""
        _warn(fullname, MODULES[fullname])
        spec = importlib.util.find_spec(MODULES[fullname])
        return spec.loader.get_code(spec.name)


def install() -> None:
    """Put the old paths' finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModules())


def moved_names(
    package: str, names: dict[str, str], fallback: Callable[[str], Any] | None = None
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` serving ``name -> new module`` with a warning
    (the old module's names), else ``fallback`` (e.g. a
    :func:`~pconv_lightning.lazy.lazy_exports` ``__getattr__``)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            warnings.warn(
                f"{package}.{name} moved to {names[name]}.{name}; the old path goes away in "
                "the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(importlib.import_module(names[name]), name)
        if fallback is not None:
            return fallback(name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
