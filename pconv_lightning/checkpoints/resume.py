"""``pconv fit --ckpt_path``: checks before resuming, and the W&B run that continues.

Before Lightning restores anything (the CLI's ``before_fit`` hook), the checkpoint is read
once (without pickle) and compared with the config:

- ``--ckpt_path last`` with no ``last*.ckpt`` in the checkpoint folders is an error (Lightning
  would warn and silently train from step 0);
- a file that is missing, truncated, not a checkpoint or in need of pickle is an error naming
  it (:func:`~pconv_lightning.checkpoints.network.read_weights_file`), and so is a
  ``--model.init_weights`` file, all before anything is written;
- a network whose weights differ in shape from the configured one (another ``layers``,
  other channels) is an error naming both sides (Lightning would load it into the config's
  network and fail later, or train another architecture than configured);
- ``trainer.max_steps`` at or below the checkpoint's step is "nothing to do": an error,
  exit 2, so scripts notice that no training happened.

W&B: the run id of each :class:`WandbLogger` is stored in every checkpoint
(:class:`WandbRunId`); a resumed run passes it back to the logger with ``resume="allow"``,
so its rows continue the same W&B run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from pconv_lightning.callbacks.sigterm import SigtermStop
from pconv_lightning.checkpoints.network import read_weights_file
from pconv_lightning.errors import ConfigError

RUN_ID_KEY = "wandb_run_id"


class WandbRunId(Callback):
    """Stores the W&B run id in every checkpoint, under :data:`RUN_ID_KEY`."""

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger) and logger.version:
                checkpoint[RUN_ID_KEY] = logger.version


def find_last(trainer: Trainer) -> Path:
    """The newest ``last*.ckpt`` in the folders of the trainer's ModelCheckpoint callbacks."""
    folders = {
        Path(cb.dirpath)
        for cb in trainer.callbacks
        if isinstance(cb, ModelCheckpoint) and cb.dirpath
    }
    found = [p for folder in folders for p in folder.glob("last*.ckpt")]
    if not found:
        where = ", ".join(sorted(str(f) for f in folders)) or "(no checkpoint folder)"
        raise ConfigError(
            f"--ckpt_path last: no last*.ckpt in {where}; nothing to resume (drop --ckpt_path "
            "to train from step 0, or pass the checkpoint file)"
        )
    return max(found, key=lambda p: p.stat().st_mtime)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's contents, read without pickle
    (:func:`~pconv_lightning.checkpoints.network.read_weights_file`).

    Raises:
        InputError: the file is missing, empty, not a checkpoint, truncated, or needs pickle
            to load (refused: Lightning would refuse it too, after writing the run's folders).
        ConfigError: it holds no Lightning ``state_dict``.
    """
    checkpoint = read_weights_file(path, "--ckpt_path", mmap=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"--ckpt_path {path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def check_init_weights(config: Any) -> None:
    """``pconv fit --model.init_weights FILE``: the file must be readable without pickle,
    checked before anything is written (the weights are loaded later, at ``setup``)."""
    if config.get("subcommand") != "fit":
        return
    model = config["fit"].get("model")
    init = model.get("init_weights") if model is not None else None
    if init and Path(init).expanduser().is_file():  # missing: load_init_weights says so
        read_weights_file(Path(init).expanduser(), "--model.init_weights")


def _layers(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(1 for k in shapes if k.startswith("net.encoder.") and k.endswith(".conv.weight"))


def check_architecture(path: Path, checkpoint: dict[str, Any], model: LightningModule) -> None:
    """The checkpoint's network must have the configured network's parameter shapes."""
    saved = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    built = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("net.")}
    if saved == built:
        return
    if _layers(saved) != _layers(built):
        raise ConfigError(
            f"--ckpt_path {path} holds a {_layers(saved)}-layer network but the config builds "
            f"{_layers(built)} layers (model.net.init_args.layers={_layers(built)}); set "
            f"--model.net.init_args.layers={_layers(saved)} or pick another checkpoint"
        )
    key = next(k for k in sorted(saved.keys() | built.keys()) if saved.get(k) != built.get(k))
    raise ConfigError(
        f"--ckpt_path {path} does not fit the configured network: {key} is "
        f"{saved.get(key, 'absent')} in the checkpoint but {built.get(key, 'absent')} in the config"
    )


def check_steps(path: Path, checkpoint: dict[str, Any], trainer: Trainer) -> None:
    """Raise "nothing to do" when ``trainer.max_steps`` is at or below the checkpoint's step."""
    step = checkpoint.get("global_step")
    if step is not None and 0 <= trainer.max_steps <= step:
        raise ConfigError(
            f"nothing to do: --ckpt_path {path} is at step {step} and --trainer.max_steps="
            f"{trainer.max_steps}; raise max_steps above {step} to train further"
        )


def prepare_fit(trainer: Trainer, model: LightningModule, ckpt_path: str | None) -> None:
    """Check ``ckpt_path`` against the config and continue its W&B run; from ``before_fit``.
    Also adds :class:`SigtermStop` (a SIGTERM to one rank stops all after the same step)."""
    trainer.callbacks.extend([WandbRunId(), SigtermStop()])
    if ckpt_path is None:
        return
    path = find_last(trainer) if ckpt_path == "last" else Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    check_architecture(path, checkpoint, model)
    check_steps(path, checkpoint, trainer)
    run_id = checkpoint.get(RUN_ID_KEY)
    for logger in trainer.loggers:
        if run_id and isinstance(logger, WandbLogger) and logger._experiment is None:
            logger._wandb_init.update(id=run_id, resume="allow")  # read by wandb.init later
            logger._id = run_id


def _net_config(net: Any) -> dict[str, Any]:
    """``{class_path, init_args}`` of a network config (a Namespace or a dict), as a dict."""
    as_dict = net.as_dict() if hasattr(net, "as_dict") else dict(net or {})
    return {"class_path": as_dict.get("class_path"), **(as_dict.get("init_args") or {})}


def check_checkpoint_config(config: Any) -> None:
    """Before LightningCLI copies a checkpoint's hyperparameters over the config, and before
    anything is written: the file (and ``fit``'s ``--model.init_weights``) must be readable
    without pickle (:func:`check_init_weights`, :func:`read_checkpoint`) and its network the
    configured one (same class and arguments), else a :class:`ConfigError` naming both sides."""
    check_init_weights(config)
    subcommand = config.get("subcommand")
    ckpt_path = config[subcommand].get("ckpt_path") if subcommand else None
    if not ckpt_path or (ckpt_path in ("last", "best", "hpc") and not Path(ckpt_path).exists()):
        return
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    saved = checkpoint.get("hyper_parameters", {}).get("net")
    if saved is None:
        return
    saved, built = _net_config(saved), _net_config(config[subcommand]["model"]["net"])
    differ = {k for k in saved.keys() & built.keys() if saved[k] != built[k]}
    if differ:
        sides = "; ".join(
            f"{k}={saved[k]!r} in the checkpoint but {built[k]!r} in the config"
            for k in sorted(differ)
        )
        raise ConfigError(
            f"--ckpt_path {path} was trained with another network than the config's: {sides} "
            "(set --model.net to the checkpoint's, or pick another checkpoint)"
        )
