"""The cluster configs as a task of a Slurm job sees them: Lightning's SLURMEnvironment takes
ranks, world size and the main node from the variables ``srun`` sets; the sbatch script is
valid bash and resumes from ``last.ckpt``. (No Slurm daemons here: see docs/clusters.md.)"""

from __future__ import annotations

import subprocess

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.cli import instantiate_class
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from training_helpers import CONFIGS, REPO

from pconv_lightning.checkpoints.atomic import AtomicCheckpointIO

NODES, PER_NODE, NODE, LOCAL = 2, 2, 1, 1  # the second task of the second node
SRUN = {  # what srun sets in that task of `sbatch --nodes 2 --ntasks-per-node 2`
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "pconv",
    "SLURM_JOB_NUM_NODES": str(NODES),
    "SLURM_NNODES": str(NODES),
    "SLURM_NTASKS": str(NODES * PER_NODE),
    "SLURM_NTASKS_PER_NODE": str(PER_NODE),
    "SLURM_NODELIST": "gpu[07-08]",
    "SLURM_NODEID": str(NODE),
    "SLURM_LOCALID": str(LOCAL),
    "SLURM_PROCID": str(NODE * PER_NODE + LOCAL),
}


def test_lightning_takes_ranks_from_srun_with_the_slurm_config(monkeypatch):
    for name, value in SRUN.items():
        monkeypatch.setenv(name, value)
    # DDP's set_world_ranks sets the process-wide rank used by every rank_zero_only: restore it,
    # or later tests in this worker log as rank 3 (W&B's experiment becomes a dummy)
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)  # one object in Lightning
    config = yaml.safe_load((CONFIGS / "cluster_slurm.yaml").read_text())["trainer"]
    plugins = [instantiate_class((), plugin) for plugin in config.pop("plugins")]
    config |= {"accelerator": "cpu", "precision": "32-true"}  # as the GPU run, on the CPU
    trainer = Trainer(**config, plugins=plugins, num_nodes=NODES, devices=PER_NODE, logger=False)
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue
    assert trainer.world_size == NODES * PER_NODE
    assert (trainer.global_rank, trainer.node_rank, trainer.local_rank) == (3, NODE, LOCAL)
    assert environment.main_address == "gpu07"  # the first node of the job
    assert environment.main_port == 15000 + 4242 % 10000  # Lightning's port for the job id
    assert any(isinstance(p, AtomicCheckpointIO) for p in [trainer.strategy.checkpoint_io])


def test_the_sbatch_script_is_valid_bash_and_resumes_from_last_ckpt():
    script = REPO / "scripts" / "cluster" / "train.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "--ckpt_path last" in text and "#SBATCH --requeue" in text
    assert "scontrol requeue" in text and "#SBATCH --signal=B:USR1@" in text
