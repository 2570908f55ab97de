"""litdata shards on an S3-compatible server (moto on 127.0.0.1, started here): written by
``pconv shards``, read as the same shards on local disk are, trained on and resumed mid-epoch,
split by chunks between two ranks; a stopped server is a quick error naming the URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from local_net import free_port
from s3_server import S3Server, read_share
from training_helpers import CONFIGS, SAMPLES, tiny_args

from pconv_lightning.cli import cli_main
from pconv_lightning.data import InpaintingDataModule
from pconv_lightning.errors import MissingInputError

URL = "s3://shards/train"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The server, with the 12 training photos sharded to :data:`URL` in 100 KB chunks (one
    photo each). The writer stages in a folder of its own, left empty, and leaves litdata's
    shared caches alone: ``$TMPDIR/chunks``, emptied by every writer on the machine, and
    ``~/.lightning/chunks/<hash of the URL>``, cleared by a reader of the same URL elsewhere."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    home, temp = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("temp")
    try:
        server.wait_ready()
        server.client().create_bucket(Bucket="shards")
        command = [sys.executable, "-m", "pconv_lightning", "shards", str(SAMPLES / "train")]
        command += [URL, "--num-workers=1", "--start-method=fork", "--chunk-bytes=100KB"]
        env = os.environ | server.env | {"HOME": str(home), "TMPDIR": str(temp)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "wrote 12 images" in done.stdout, done.stderr[-3000:]
        assert not (home / ".lightning").exists() and not list(temp.iterdir())
        yield server
    finally:
        server.stop()


def shards(dm_source: str, cache: Path) -> list[dict]:
    """The items of ``dm_source`` read as a validation set (crops and masks deterministic)."""
    dm = InpaintingDataModule(
        val=dm_source, backend="litdata", image_size=64, num_workers=0, cache_dir=str(cache)
    )
    dm.setup("validate")
    return list(dm.datasets["val"])


@pytest.mark.slow
def test_shards_on_s3_read_train_and_resume_as_local_shards(s3, tmp_path, monkeypatch):
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="shards")["Contents"]]
    local = tmp_path / "local"
    local.mkdir()
    for key in keys:  # the same shards on local disk, fetched by boto3 alone
        client.download_file("shards", key, str(local / Path(key).name))
    assert len([k for k in keys if k.endswith(".bin")]) >= 3

    remote, disk = (shards(s, tmp_path / c) for s, c in ((URL, "c1"), (str(local), "c2")))
    assert len(remote) == len(disk) == 12
    for a, b in zip(remote, disk, strict=True):
        assert a["path"] == b["path"] and a["bucket"] == b["bucket"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])

    # An uninterrupted run's first 4 batches, as the training loader gives them.
    dm = InpaintingDataModule(
        train=URL, backend="litdata", image_size=64, batch_size=2, num_workers=0,
        cache_dir=str(tmp_path / "c3"),
    )  # fmt: skip
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    expected = [next(loader)["path"] for _ in range(4)]

    from pconv_lightning.module import InpaintingModule

    trained: list[list[str]] = []
    monkeypatch.setattr(
        InpaintingModule, "on_train_batch_start", lambda self, b, i: trained.append(b["path"])
    )
    args = [
        "fit", f"--config={CONFIGS / 'quickstart.yaml'}", *tiny_args(tmp_path / "run"),
        "--data.backend=litdata", f"--data.train={URL}", "--data.val=null",
        f"--data.cache_dir={tmp_path / 'c4'}", "--trainer.logger=false",
        "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
    ]  # fmt: skip
    cli_main(args)  # 2 steps of the epoch's 6
    cli_main([*args, "--trainer.max_steps=4", "--ckpt_path=last"])
    assert trained == expected


@pytest.mark.slow
def test_two_ranks_read_disjoint_shares_chunk_by_chunk(s3, tmp_path, monkeypatch):
    """litdata gives each rank a range of the samples: each downloads only the chunks that
    hold its range (a chunk across the boundary of two ranges is read by both)."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    context = torch.multiprocessing.get_context("spawn")
    ranks = [
        context.Process(
            target=read_share,
            args=(r, port, URL, str(tmp_path / f"cache{r}"), str(tmp_path / f"rank{r}.pt")),
        )
        for r in (0, 1)
    ]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=300)
    assert [p.exitcode for p in ranks] == [0, 0]
    reads = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    chunks = len(s3.client().list_objects_v2(Bucket="shards", Prefix="train/chunk-")["Contents"])
    assert [len(read["paths"]) for read in reads] == [6, 6]
    assert set(reads[0]["paths"]).isdisjoint(reads[1]["paths"])
    assert len(set(reads[0]["chunks"]) & set(reads[1]["chunks"])) <= 1
    assert all(len(read["chunks"]) < chunks for read in reads)


def test_a_stopped_server_is_a_quick_error_naming_the_url(tmp_path, monkeypatch):
    server = S3Server(tmp_path)
    server.wait_ready()
    server.stop()
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    start = time.monotonic()
    with pytest.raises(MissingInputError, match=f"cannot read the litdata shards at {URL} "):
        InpaintingDataModule(train=URL, backend="litdata", cache_dir=str(tmp_path)).setup("fit")
    assert time.monotonic() - start < 60
