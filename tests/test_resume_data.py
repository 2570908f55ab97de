"""A run resumed mid-epoch trains on the samples an uninterrupted run would have: the training
loader starts the resumed epoch where the checkpoint left it, not at its first batch again
(which would repeat that epoch's first batches and never reach its last ones)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from training_helpers import CONFIGS, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.data.datasets import EpochSampler

QUICKSTART = f"--config={CONFIGS / 'quickstart.yaml'}"


def record_batches(monkeypatch) -> list[tuple[int, tuple[str, ...], float]]:
    """Every trained batch as (epoch, its photos, its masks' valid-pixel count); a run stops
    as on SIGTERM (Lightning ends the batch and raises) after the step ``stop_at`` says."""
    from pconv_lightning.module import InpaintingModule

    seen: list[tuple[int, tuple[str, ...], float]] = []

    def on_train_batch_start(self, batch, batch_idx) -> None:
        seen.append((self.current_epoch, tuple(batch["path"]), float(batch["mask"].sum())))

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.trainer.global_step == STOP_AT.get("step"):
            self.trainer._signal_connector.received_sigterm = True  # what its handler sets

    monkeypatch.setattr(InpaintingModule, "on_train_batch_start", on_train_batch_start)
    monkeypatch.setattr(InpaintingModule, "on_train_batch_end", on_train_batch_end)
    return seen


STOP_AT: dict[str, int] = {}


def fit(root, stop_at: int | None, *extra: str) -> None:
    """Up to step 9, stopped by a SIGTERM at ``stop_at`` (None: not stopped)."""
    STOP_AT["step"] = stop_at
    args = ["fit", QUICKSTART, *tiny_args(root, steps=9), "--trainer.logger=false", *extra]
    if stop_at is None:
        cli_main(args)
        return
    with pytest.raises(SystemExit):  # Lightning's exit after a SIGTERM, with last.ckpt saved
        cli_main(args)


def test_epoch_sampler_starts_the_resumed_epoch_where_it_stopped():
    sampler = EpochSampler(10, shuffle=True, seed=3)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.resume_at(2, 4)
    assert list(sampler) == whole[4:] + whole[:4] and len(sampler) == 10
    sampler.set_epoch(3)
    assert sorted(list(sampler)) == sorted((3, i) for i in range(10))


def test_ddp_ranks_share_the_rest_of_the_resumed_epoch():
    """2 ranks, 2 batches of 3 trained by each before the stop (12 samples of 36): what they
    trained is the order's first 12 keys, and after the resume their next 12 keys are the
    rest, as for 3 ranks resuming the same position."""
    whole = EpochSampler(36, shuffle=True, seed=0)
    whole.set_epoch(5)
    order = list(whole)

    def ranks(count: int, start: int) -> list[list[tuple[int, int]]]:
        shares = []
        for rank in range(count):
            sampler = EpochSampler(36, shuffle=True, seed=0, num_replicas=count, rank=rank)
            sampler.set_epoch(5)
            sampler.resume_at(5, start)
            shares.append(list(sampler))
        return shares

    assert sorted(k for share in ranks(2, 0) for k in share[:6]) == sorted(order[:12])
    for count in (2, 3):
        shares = ranks(count, 12)
        rest = [key for share in shares for key in share[: 24 // count]]
        assert len(shares[0]) == 36 // count and sorted(rest) == sorted(order[12:])


def test_position_counts_the_samples_of_all_ranks():
    from pconv_lightning.data import InpaintingDataModule

    module = InpaintingDataModule(train="unused", num_workers=0)
    module.trainer = trainer = SimpleNamespace(training=True, current_epoch=3, world_size=4)
    for _ in range(2):
        module.on_before_batch_transfer({"mask": torch.zeros(2, 1, 8, 8)}, 0)
    assert module.position == (3, 16)  # 2 batches of 2 on each of 4 ranks
    trainer.current_epoch = 4
    module.on_before_batch_transfer({"mask": torch.zeros(2, 1, 8, 8)}, 0)
    assert module.position == (4, 8)


@pytest.mark.slow
def test_resumed_runs_train_on_the_batches_of_an_uninterrupted_one(tmp_path, monkeypatch, caplog):
    """12 photos in batches of 2: 6 steps an epoch. One run to step 9; another stopped at step
    4 (last.ckpt saved on SIGTERM), resumed and stopped at step 7 (last.ckpt saved at the
    batch's end, as the time-interval saves of a long run are), resumed to step 9."""
    seen = record_batches(monkeypatch)
    fit(tmp_path / "whole", None)
    whole = list(seen)
    seen.clear()
    root = tmp_path / "pieces"
    fit(root, 4)
    fit(root, 7, "--ckpt_path=last", "--last_checkpoint.every_n_train_steps=1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(root, None, "--ckpt_path=last")
    assert [epoch for epoch, *_ in whole] == [0] * 6 + [1] * 3
    assert seen == whole
    assert "Resuming epoch 1 of the training data at sample 2" in caplog.text
    assert not [w for w in caught if "not resumable" in str(w.message)]
