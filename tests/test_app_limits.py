"""``pconv app`` per-request bounds: the interactive pixel cap, the time limit, concurrency
(a small request does not wait behind a large one), files cleaned on a schedule and at
SIGTERM, and no import cycle between the app's modules. Requests go to 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_app import _client, _free_port
from training_helpers import REPO, SAMPLES

from pconv_lightning.app.limits import (
    DeadlineEngine,
    RequestTimeout,
    capped_inpaint,
    remove_old_files,
)
from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.inference import Inpainter, TorchEngine
from pconv_lightning.inference.downscaled import work_size
from pconv_lightning.models import PConvUNet


def engine() -> TorchEngine:
    torch.manual_seed(0)
    return TorchEngine(PConvUNet(layers=3))


def test_app_modules_depend_downwards_only():
    code = (
        "import sys, pconv_lightning.app.page; print('pconv_lightning.app.command' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_work_size_keeps_the_aspect_under_the_cap():
    assert work_size(300, 400, 10**6) == (300, 400)
    h, w = work_size(4000, 6000, 4_000_000)
    assert h * w <= 4_000_000 and abs(w / h - 1.5) < 0.01 and h * w > 3_990_000


def test_capped_inpaint_above_the_cap_keeps_valid_pixels_and_says_so():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    mask = np.ones((300, 400), np.uint8)
    mask[100:150, 100:250] = 0
    inpainter = Inpainter(engine(), 256, 32)
    out, notice = capped_inpaint(inpainter, image, mask, 30_000)
    assert out.shape == image.shape and np.array_equal(out[mask == 1], image[mask == 1])
    assert notice and "120,000" not in notice and "0.1 MP" in notice and "pconv inpaint" in notice
    # the holes hold the small repair upscaled: far from the noise, close to the small result
    # (made here with PIL: 2x2 box average, a hole wherever a 2x2 block has one, bilinear up)
    small = Image.fromarray(image).resize((200, 150), Image.Resampling.BOX)
    small_mask = mask.reshape(150, 2, 200, 2).min(axis=(1, 3))
    repair = Image.fromarray(inpainter(np.asarray(small), small_mask))
    up = np.asarray(repair.resize((400, 300), Image.Resampling.BILINEAR)).astype(float)
    hole = mask == 0
    assert np.abs(out[hole] - up[hole]).mean() < 2  # measured 0.44 (cv2 vs PIL resampling)
    assert np.abs(out[hole] - image[hole].astype(float)).mean() > 50  # measured 113
    whole, none = capped_inpaint(inpainter, image, mask, 10**6)
    assert none is None and np.array_equal(whole, inpainter(image, mask))


def test_a_request_past_its_time_limit_stops_before_the_next_tile():
    calls = []

    class Slow:
        multiple = 8

        def __call__(self, x, m):
            calls.append(1)
            time.sleep(0.2)
            return np.zeros_like(x) + 0.5

    image = np.zeros((512, 512, 3), np.uint8)
    mask = np.zeros((512, 512), np.uint8)
    mask[::4, ::4] = 1
    with pytest.raises(RequestTimeout, match=r"longer than the 0\.3 s limit"):
        Inpainter(DeadlineEngine(Slow(), 0.3), 64, 16)(image, mask)
    assert 2 <= len(calls) <= 3  # of 81 tiles


def test_remove_old_files(tmp_path):
    old, new = tmp_path / "a" / "old.png", tmp_path / "b" / "new.png"
    for path in (old, new):
        path.parent.mkdir()
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert remove_old_files(tmp_path, 50) == 1
    assert not old.exists() and not old.parent.exists() and new.exists()


def test_files_must_outlive_the_longest_request(capsys):
    """A request reads its uploads up to (its wait in the queue + its run) after they arrive:
    at most --time-limit x (1 + --max-queue / --concurrency). Shorter lifetimes are refused
    before anything starts; the defaults (120 s, 8, 2: 600 s) hold."""
    from pconv_lightning.app.command import main as app_main

    args = ["--time-limit", "15", "--max-queue", "8", "--concurrency", "2", "--keep-results", "74"]
    with pytest.raises(SystemExit) as exit_info:
        app_main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--keep-results 74 is shorter than" in err and "15 x (1 + 8 / 2) = 75 s" in err


@pytest.fixture
def bounded_server(tmp_path):
    """``pconv app`` with a 15 s time limit, one waiting request and the shortest file lifetime
    this allows, 15 x (1 + 1 / 2) = 22.5 s; TMPDIR inside tmp_path."""
    save_network(engine().net, tmp_path / "net.safetensors")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = _free_port()
    env = os.environ | {
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(REPO),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    cmd = [sys.executable, "-m", "pconv_lightning", "app", "--checkpoint"]
    cmd += [str(tmp_path / "net.safetensors"), "--port", str(port)]
    cmd += ["--time-limit", "15", "--max-queue", "1", "--keep-results", "22.5"]
    cmd += ["--work-pixels", "30000000"]
    log = open(tmp_path / "app.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url, timeout=5):
                break
        except OSError:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            time.sleep(0.5)
    yield url, proc, tmp
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    log.close()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_a_small_request_does_not_wait_behind_a_large_one_and_files_go(
    bounded_server, tmp_path, monkeypatch
):
    from gradio_client import handle_file

    url, proc, tmp = bounded_server
    small = Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB")
    small.save(tmp_path / "small.png")
    big = small.resize((6000, 4000), Image.Resampling.BILINEAR)
    big.save(tmp_path / "big.png", compress_level=1)
    for name, (w, h) in {"small_mask.png": small.size, "big_mask.png": big.size}.items():
        hole = np.zeros((h, w), np.uint8)
        hole[:, ::7] = 255  # stripes: every tile has holes
        Image.fromarray(hole).save(tmp_path / name)

    def call(photo: str, mask: str):
        editor = {"background": handle_file(str(tmp_path / photo)), "layers": [], "composite": None}
        client = _client(url, tmp_path, monkeypatch)
        return client.predict(
            editor, handle_file(str(tmp_path / mask)), "white = hole", api_name="/inpaint"
        )

    done: dict[str, object] = {}

    def run_big():
        try:
            call("big.png", "big_mask.png")
            done["big"] = "finished"
        except Exception as err:
            done["big"] = str(err)
        done["big_at"] = time.monotonic()

    thread = threading.Thread(target=run_big)
    thread.start()
    time.sleep(4)  # the upload is under way or the repair has started
    start = time.monotonic()
    (_, result), _, _ = call("small.png", "small_mask.png")
    small_done = time.monotonic()
    assert _files(tmp), "results and uploads live under TMPDIR"
    thread.join(timeout=300)
    assert Path(result).is_file()
    assert small_done - start < 60 and small_done < done["big_at"]  # not behind the big one
    assert "15 s limit" in str(done["big"]), done  # stopped by the time limit
    deadline = time.monotonic() + 60  # 22.5 s after the last upload, checked every 11 s
    while _files(tmp) and time.monotonic() < deadline:
        time.sleep(1)
    assert not _files(tmp), _files(tmp)  # older than --keep-results: deleted
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not list(tmp.iterdir()), list(tmp.iterdir())  # the app's folder is gone
