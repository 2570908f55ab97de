"""Two nodes x one process through torchrun (gloo, CPU) on 127.0.0.1: each node with its own
HOME and caches, a shared data folder and a shared output folder, as on a cluster.

One run is stopped by a SIGTERM to node 1 at step 5 (mid-epoch) and resumed on both nodes with
``--ckpt_path last``. Checked against independent computations: the first step's gradients and
weights against one process's on the same global batch, the budget against the batches every
rank logged, the resumed epoch against the photos the stopped one had not trained.
"""

from __future__ import annotations

import multiprocessing
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml
from multinode_helpers import MASKS, read_log, start_nodes, wait_all
from training_helpers import SAMPLES

from pconv_lightning.checkpoints.pieces import merge_pieces
from pconv_lightning.data.filelist import load_file_list
from pconv_lightning.masks import read_manifest
from pconv_lightning.masks.split import split_even_odd
from pconv_lightning.memory_format import channels_last_pays
from pconv_lightning.models import PConvUNet
from pconv_lightning.module import InpaintingModule

PHOTOS = 12  # data/samples/train
PAUSE = 5  # node 1 is stopped after this step: epoch 1, two of its three batches trained


def tiny_config(root: Path, log: Path) -> dict:
    """Global batch 4 (2 per rank): 3 steps per epoch; 64x64 crops in epoch 0, then 32x32
    (data.phases); masks from the node's own split of the masks in its HOME."""
    mask_root = f"~/{MASKS}/train"
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "num_nodes": 2,
            "strategy": "ddp",
            "precision": "32-true",
            "max_steps": 7,
            "max_epochs": None,
            "reload_dataloaders_every_n_epochs": 1,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(root),
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.WandbLogger",
                    "init_args": {"project": "pconv-lightning", "offline": True},
                }
            ],
            "callbacks": [
                {
                    "class_path": "pconv_lightning.callbacks.half_weights.HalfWeightsExport",
                    "init_args": {"every_seconds": 3600, "keep": 5},
                },
                {
                    "class_path": "multinode_helpers.RankLog",
                    "init_args": {"folder": str(log), "pause_at": PAUSE},
                },
            ],
        },
        "model": {"net": {"init_args": {"layers": 5}}, "val_lpips": None},
        "data": {
            "class_path": "pconv_lightning.data.progressive.ProgressiveInpaintingDataModule",
            "init_args": {
                "train": str(SAMPLES / "train"),
                "val": None,
                "image_size": 64,
                "batch_size": 2,
                "num_workers": 0,
                "phases": [{"at_step": 3, "image_size": 32, "batch_size": 2}],
                "mask_generator": {
                    "class_path": "pconv_lightning.masks.FileMaskGenerator",
                    "init_args": {"root": mask_root, "resize": "resize", "dilation": [1, 3]},
                },
            },
        },
        "last_checkpoint": {"every_n_train_steps": 2},
        "best_checkpoint": {"save_top_k": 0, "monitor": None},
    }


def nvidia_like_masks(folder: Path) -> Path:
    """The shipped masks named as the NVIDIA test set is (00000.png, 00006.png, ...)."""
    folder.mkdir()
    for k, path in enumerate(sorted((SAMPLES / "eval_masks").glob("*.png"))):
        shutil.copy(path, folder / f"{6 * k:05d}.png")
    return folder


def one_process_first_step(first: dict, rank1: dict) -> tuple[dict, dict]:
    """Gradients and parameters after one Adam step of one process on both ranks' batches: the
    mean of the two batches' losses (each batch with its own BatchNorm statistics, as DDP
    without sync_batchnorm computes them)."""
    # in the memory format the run chose for this CPU (its config leaves channels_last unset)
    fmt = channels_last_pays(torch.device("cpu"))
    module = InpaintingModule(net=PConvUNet(layers=5), val_lpips=None, channels_last=fmt)
    module.net.load_state_dict(first["before"])
    module.train()
    batches = [module._formatted(b["image"], b["mask"]) for b in (first, rank1)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each node (OMP_NUM_THREADS=1): oneDNN's channels-last
    try:  # weight gradients sum in an order that depends on the threads
        losses = [module.loss(module(i, m), i, m)["total"] for i, m in batches]
        (sum(losses) / 2).backward()
    finally:
        torch.set_num_threads(threads)
    grads = {n: p.grad.clone() for n, p in module.net.named_parameters()}
    optimizer = torch.optim.Adam(module.net.parameters(), lr=2e-4)  # base.yaml's
    optimizer.step()
    return grads, {n: p.detach() for n, p in module.net.named_parameters()}


@pytest.mark.slow
def test_two_nodes_stop_together_and_resume(tmp_path):
    out, log = tmp_path / "shared_out", tmp_path / "ranklog"
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(out, log)))
    masks = nvidia_like_masks(tmp_path / "nvidia_masks")

    # Both nodes start at the same instant; node 1 gets a SIGTERM while every rank waits after
    # step 5, then both go on and stop at the end of that step.
    nodes = start_nodes(tmp_path, masks, [f"--config={config}"])
    ranks_paused = [log / f"rank{r}.jsonl" for r in (0, 1)]
    for _ in range(3000):
        if all(p.is_file() and f'"step": {PAUSE},' in p.read_text() for p in ranks_paused):
            break
        assert all(n.poll() is None for n in nodes), (tmp_path / "node0.log").read_text()[-3000:]
        time.sleep(0.2)
    nodes[1].send_signal(signal.SIGTERM)
    for _ in range(600):  # node 1's torchrun passes the signal on to its process
        if "closing signal SIGTERM" in (tmp_path / "node1.log").read_text():
            break
        time.sleep(0.1)
    (log / "go").touch()
    codes = wait_all(nodes, timeout=120)
    logs = [(tmp_path / f"node{r}.log").read_text() for r in (0, 1)]
    assert all(code != 0 for code in codes), logs  # stopped, not finished
    assert "exitcode  : 143" in logs[0]  # rank 0 stopped by the SIGTERM that reached node 1
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert ckpt["global_step"] == PAUSE, logs
    stopped = [read_log(log, r) for r in (0, 1)]
    for records in stopped:
        assert records[-1]["step"] == PAUSE  # no rank went on after the signal

    # The first step: DDP's averaged gradients and the weights after it are one process's.
    first = [torch.load(log / f"first-rank{r}.pt", weights_only=True) for r in (0, 1)]
    grads, after = one_process_first_step(first[0], first[1])
    for rank in first:
        for name, grad in grads.items():  # summation order differs: 1e-6 of the norm
            assert (rank["grads"][name] - grad).norm() <= 1e-5 * grad.norm(), name
        for name, value in after.items():
            torch.testing.assert_close(rank["after"][name], value, rtol=1e-5, atol=1e-8)

    # Resume on both nodes from the shared last.ckpt, to the end (step 7).
    nodes = start_nodes(tmp_path, masks, [f"--config={config}", "--ckpt_path=last"])
    assert wait_all(nodes, timeout=300) == [0, 0], [
        (tmp_path / f"node{r}.log").read_text()[-3000:] for r in (0, 1)
    ]
    runs = [read_log(log, r) for r in (0, 1)]
    for records in runs:
        starts = [r for r in records if r["event"] == "start"]
        # both ranks resume at step 5 in epoch 1, 8 of its 12 photos trained
        assert starts[-1] == {"event": "start", "step": PAUSE, "epoch": 1, "position": [1, 8]}
    batches = [r for records in runs for r in records if r["event"] == "batch"]
    assert sorted({b["step"] for b in batches}) == list(range(1, 8))
    for epoch in (0, 1):  # every photo once per epoch, across ranks and the stop
        seen = Counter(p for b in batches if b["epoch"] == epoch for p in b["paths"])
        assert len(seen) == PHOTOS and set(seen.values()) == {1}, (epoch, seen)

    # One checkpoint file and one complete export, in the shared output folder only.
    final = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert final["global_step"] == 7
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
    budget = next(v for k, v in final["callbacks"].items() if k.startswith("TrainingBudget"))
    counted = Counter()  # every rank's images once: both ranks' batches as logged
    for b in batches:
        counted["64" if b["epoch"] == 0 else "32"] += len(b["paths"])
    assert budget["counts"] == dict(counted) == {"64": 12, "32": 16}
    exports = sorted(p.name for p in (out / "weights").glob("step-*"))
    assert exports == ["step-0000007"] and (out / "weights" / "LATEST").read_text() == exports[0]
    state, manifest = merge_pieces(out / "weights" / exports[0])
    assert manifest["images_seen"] == 28 and state.keys() == final_net(final).keys()

    # One W&B run, continued by the resumed start: rank 0's run folders share one run id.
    folders = sorted((out / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and len({f.name.rsplit("-", 1)[1] for f in folders}) == 1

    # Each node's own caches: its mask split and its file list, made once, nothing half-made.
    for rank in (0, 1):
        cache = tmp_path / f"node{rank}" / "home" / ".cache" / "pconv_lightning"
        assert len(list((cache / "masks" / "train").glob("*.png"))) == 12
        assert (cache / "masks" / "eval" / "manifest.csv").is_file()
        assert [p.suffix for p in (cache / "filelists").iterdir()] == [".txt"]
        assert sorted(p.name for p in (cache / "masks").iterdir()) == ["eval", "train"]


def final_net(checkpoint: dict) -> dict:
    """The network tensors of a Lightning checkpoint, without the ``net.`` prefix."""
    return {k[4:]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}


def _split(folders: tuple[Path, Path, Path]) -> None:
    split_even_odd(*folders)


def _file_list(root_and_cache: tuple[Path, Path]) -> list[str]:
    files = load_file_list(*root_and_cache)
    return [files[i] for i in range(len(files))]


def test_the_mask_split_and_the_file_list_made_by_four_processes_at_once(tmp_path):
    """Four ranks sharing one cache folder (a home folder on a cluster's network storage)."""
    halves = (tmp_path / "cache" / "train", tmp_path / "cache" / "eval")
    cache = tmp_path / "cache"
    # spawn, not fork: a forked child of a process with threads (torch, W&B) can deadlock
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_split, [(nvidia_like_masks(tmp_path / "nvidia"), *halves)] * 4)
        lists = pool.map(_file_list, [(SAMPLES / "train", cache)] * 4)
    assert sorted(p.name for p in cache.iterdir()) == ["eval", "filelists", "train"]
    assert len(list(halves[0].glob("*.png"))) == len(list(halves[1].glob("*.png"))) == 12
    assert len(read_manifest(halves[1])) == 12
    assert [p.suffix for p in (cache / "filelists").iterdir()] == [".txt"]
    assert all(found == lists[0] for found in lists) and len(lists[0]) == PHOTOS
