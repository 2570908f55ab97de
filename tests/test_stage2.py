"""Stage2Finetune: the switch, frozen encoder statistics across training and validation,
scheduler base lrs, and resuming a stage-2 checkpoint or starting stage 2 from a stage-1 one."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback
from test_module import tiny_data, tiny_module, tiny_trainer
from torch import nn

from pconv_lightning.callbacks import Stage2Finetune


def scheduler(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)


class Watch(Callback):
    """Records, per training step, the lr, the encoder BN modes and the encoder statistics."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        enc = pl_module.net.encoder_batchnorms()
        dec = [m for m in pl_module.net.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
        self.steps.append(
            {
                "step": trainer.global_step,
                "lr": trainer.optimizers[0].param_groups[0]["lr"],
                "sched_lr": [c.scheduler.get_last_lr()[0] for c in trainer.lr_scheduler_configs],
                "enc_training": any(bn.training for bn in enc),
                "dec_training": all(bn.training for bn in dec),
                "enc_mean": torch.cat([bn.running_mean for bn in enc]).clone(),
            }
        )


def test_switch_freezes_encoder_statistics_and_sets_lr_everywhere(tmp_path):
    watch, stage2 = Watch(), Stage2Finetune(at_step=2, lr=5e-5)
    trainer = tiny_trainer(tmp_path, steps=6, callbacks=[stage2, watch], val_check_interval=3)
    trainer.fit(tiny_module(lr_scheduler=scheduler), tiny_data())
    before, after = watch.steps[:2], watch.steps[2:]
    assert all(s["lr"] == 2e-4 and s["enc_training"] for s in before)
    assert all(s["lr"] == 5e-5 and not s["enc_training"] and s["dec_training"] for s in after)
    # Statistics move in stage 1, then stay frozen through training and the validation at step 3.
    assert not torch.equal(before[0]["enc_mean"], after[0]["enc_mean"])
    assert all(torch.equal(after[0]["enc_mean"], s["enc_mean"]) for s in after)
    assert trainer.lr_scheduler_configs[0].scheduler.base_lrs == [5e-5]
    assert all(s["sched_lr"] == [s["lr"]] for s in watch.steps)
    assert stage2.state_dict() == {"active": True}


def halving(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


def test_lr_is_set_once_at_the_switch_and_the_scheduler_then_decays_it(tmp_path):
    """Epochs of 2 steps, StepLR halving per epoch, switch at step 3 (mid-epoch 1): the lr is
    2e-4, 1e-4, then 5e-5 from the switch, halved to 2.5e-5 and 1.25e-5 at the next epoch ends,
    and the scheduler reports what the optimizer uses at every step. Resuming the stage-2
    checkpoint keeps the decayed lr (it does not go back to 5e-5)."""
    watch = Watch()
    trainer = tiny_trainer(
        tmp_path, steps=8, callbacks=[Stage2Finetune(at_step=3), watch], limit_train_batches=2
    )
    trainer.fit(tiny_module(lr_scheduler=halving), tiny_data())
    expected = [2e-4, 2e-4, 1e-4, 5e-5, 2.5e-5, 2.5e-5, 1.25e-5, 1.25e-5]
    assert [s["lr"] for s in watch.steps] == pytest.approx(expected, rel=1e-12)
    assert all(s["sched_lr"] == [s["lr"]] for s in watch.steps[3:])
    trainer.save_checkpoint(tmp_path / "stage2.ckpt")
    watch = Watch()
    resumed = tiny_trainer(
        tmp_path, steps=10, callbacks=[Stage2Finetune(at_step=3), watch], limit_train_batches=2
    )
    resumed.fit(tiny_module(lr_scheduler=halving), tiny_data(), ckpt_path=tmp_path / "stage2.ckpt")
    assert [s["lr"] for s in watch.steps] == pytest.approx([6.25e-6] * 2, rel=1e-12)
    assert all(s["sched_lr"] == [s["lr"]] and not s["enc_training"] for s in watch.steps)


def test_resuming_a_stage2_checkpoint_stays_in_stage2(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=3, callbacks=[Stage2Finetune(at_step=1)])
    trainer.fit(tiny_module(), tiny_data())
    trainer.save_checkpoint(tmp_path / "stage2.ckpt")
    watch, stage2 = Watch(), Stage2Finetune(at_step=1000)  # would not switch by itself
    resumed = tiny_trainer(tmp_path, steps=5, callbacks=[stage2, watch])
    resumed.fit(tiny_module(), tiny_data(), ckpt_path=tmp_path / "stage2.ckpt")
    assert [s["step"] for s in watch.steps] == [3, 4]
    assert all(s["lr"] == 5e-5 and not s["enc_training"] for s in watch.steps)
    assert torch.equal(watch.steps[0]["enc_mean"], watch.steps[-1]["enc_mean"])


def test_stage2_as_a_separate_fit_from_a_stage1_checkpoint(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=2, callbacks=[Stage2Finetune()])
    trainer.fit(tiny_module(), tiny_data())
    trainer.save_checkpoint(tmp_path / "stage1.ckpt")
    assert torch.load(tmp_path / "stage1.ckpt", weights_only=True)["callbacks"][
        "Stage2Finetune"
    ] == {"active": False}
    watch = Watch()
    finetune = tiny_trainer(tmp_path, steps=4, callbacks=[Stage2Finetune(at_step=0), watch])
    finetune.fit(tiny_module(), tiny_data(), ckpt_path=tmp_path / "stage1.ckpt")
    assert [s["step"] for s in watch.steps] == [2, 3]
    assert all(s["lr"] == 5e-5 and not s["enc_training"] for s in watch.steps)
