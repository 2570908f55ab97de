"""What a study compares: arms (config files on top of a base config), seeds per arm, the
training budget in images, and the fixed evaluation pairs.

A study file (``experiments/studies/*.yaml``) gives the same fields as ``pconv ablate``'s
options, plus ``arms`` (name -> config files and seeds) and, optionally, ``photos`` (the
held-out split, :mod:`pconv_lightning.study.photos`) and ``mask_split`` (the NVIDIA masks'
even/odd halves). Options given on the command line win over the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pconv_lightning.errors import ConfigError, MissingInputError


@dataclass(frozen=True)
class Arm:
    """One arm: ``configs`` applied in order on top of the base config, trained ``seeds`` times
    with the seeds ``0 .. seeds - 1``."""

    name: str
    configs: tuple[Path, ...]
    seeds: int

    def run_names(self) -> list[str]:
        """``NAME_seedS`` for each of the arm's seeds."""
        return [f"{self.name}_seed{s}" for s in range(self.seeds)]


@dataclass
class Study:
    """Every setting of one comparison (see ``pconv ablate --help``)."""

    base: Path
    arms: list[Arm]
    reference: str
    images_per_run: int
    batch_size: int
    images: Path
    masks: Path | None
    builtin_masks: int | None
    size: int
    per_cell: int | None
    limit: int | None
    out: Path
    runs: Path
    device: str | None = None
    eval_batch_size: int = 16
    fit_args: list[str] = field(default_factory=list)
    photos: dict[str, Any] | None = None
    mask_split: dict[str, Any] | None = None

    @property
    def max_steps(self) -> int:
        """Training steps of every run: the image budget at the study's batch size."""
        return self.images_per_run // self.batch_size

    def check(self) -> None:
        """Raise a one-line error for a study that cannot run."""
        names = [arm.name for arm in self.arms]
        if not self.arms:
            raise ConfigError("a study needs at least one arm (configs or `arms:` in --study)")
        if len(set(names)) != len(names):
            raise ConfigError(f"arm names must be distinct, got {names}")
        if self.reference not in names:
            raise ConfigError(f"--reference {self.reference!r} is not one of the arms {names}")
        for arm in self.arms:
            if arm.seeds < 1:
                raise ConfigError(f"arm {arm.name!r}: seeds must be >= 1, got {arm.seeds}")
            for config in (self.base, *arm.configs):
                if not config.is_file():
                    raise MissingInputError(f"config {config} does not exist (arm {arm.name!r})")
        if self.images_per_run < self.batch_size:
            raise ConfigError(
                f"--images-per-run {self.images_per_run} is less than one batch of "
                f"{self.batch_size}"
            )


def arm_from_text(text: str, seeds: int) -> Arm:
    """``[NAME=]CONFIG[+CONFIG...]``; without a name, the first config's stem less ``masks_``."""
    name, sep, configs = text.partition("=")
    if not sep:
        name, configs = Path(text.split("+")[0]).stem.removeprefix("masks_"), text
    return Arm(name, tuple(Path(c) for c in configs.split("+")), seeds)


def arms_from_mapping(mapping: dict[str, Any], seeds: int, source: Path) -> list[Arm]:
    """``arms:`` of a study file: ``NAME: {configs: [...], seeds: N}`` (seeds optional)."""
    arms = []
    for name, spec in mapping.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("configs"), list):
            raise ConfigError(f"{source}: arm {name!r} needs `configs:` (a list of YAML files)")
        arms.append(
            Arm(str(name), tuple(Path(c) for c in spec["configs"]), int(spec.get("seeds", seeds)))
        )
    return arms


def read_study_file(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The study file's options; ``extends: OTHER.yaml`` takes every option of that file first,
    so a study file can hold only what it changes."""
    if not path.is_file():
        raise MissingInputError(f"--study {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"--study {path}: expected a mapping of options, got {type(data).__name__}"
        )
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if Path(parent).resolve() in {p.resolve() for p in (*seen, path)}:
        raise ConfigError(f"--study {path}: `extends: {parent}` makes a loop")
    return {**read_study_file(Path(parent), (*seen, path)), **data}
