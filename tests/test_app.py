"""``pconv app`` end to end: a real Chromium driven by Playwright paints a stroke and runs the
model; malformed uploads through the API each get a message while the server keeps answering.

Set ``PCONV_UPDATE_SCREENSHOTS=1`` to refresh the README's screenshots in ``docs/``.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import missing_prerequisite
from PIL import Image
from training_helpers import SAMPLES

from pconv_lightning.app.command import main as app_main
from pconv_lightning.checkpoints.network import save_network
from pconv_lightning.models import PConvUNet

# The module-scoped fixture is built once, on one xdist worker, for all the tests here.
pytestmark = pytest.mark.xdist_group("app")

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
BRUSH_RADIUS = 12  # the app's default brush size, in image pixels


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``pconv app`` in a subprocess with a tiny checkpoint, on a free port."""
    root = tmp_path_factory.mktemp("app")
    torch.manual_seed(0)
    save_network(PConvUNet(layers=4), root / "net.safetensors")
    port = _free_port()
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": "127.0.0.1,localhost"}
    log = open(root / "app.log", "w")  # noqa: SIM115 - closed below
    cmd = [
        sys.executable,
        "-m",
        "pconv_lightning",
        "app",
        "--checkpoint",
        str(root / "net.safetensors"),
    ]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"app did not start: {(root / 'app.log').read_text()[-3000:]}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_missing_checkpoint_is_a_clear_message(tmp_path, capsys):
    assert app_main(["--checkpoint", str(tmp_path / "nope.ckpt")]) == 2
    assert (
        f"--checkpoint: checkpoint {tmp_path / 'nope.ckpt'} does not exist"
        in capsys.readouterr().err
    )


def _bad_uploads(root: Path) -> dict[str, Path]:
    png = BytesIO()
    jpg = BytesIO()
    photo = Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB")
    photo.save(png, "PNG")
    photo.save(jpg, "JPEG")
    raw = {
        "empty.png": b"",
        "truncated.png": png.getvalue()[: len(png.getvalue()) // 2],
        "truncated.jpg": jpg.getvalue()[: len(jpg.getvalue()) // 2],
        "text.png": b"this is a text file, not a PNG\n",
    }
    files = {}
    for name, data in raw.items():
        (root / name).write_bytes(data)
        files[name] = root / name
    Image.new("L", (9000, 9000)).save(root / "bomb.png")  # 81 MP in 80 kB: over the 40 MP cap
    Image.new("RGB", (1, 1), "red").save(root / "one.png")
    files |= {"bomb.png": root / "bomb.png", "one.png": root / "one.png"}
    return files


EXPECTED = {
    "empty.png": "not an image file",
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "text.png": "not an image file",
    "bomb.png": "too many pixels",
    "one.png": "the photo is 1x1; it must be at least 16x16",
}


def test_malformed_uploads_get_messages_and_the_server_stays_up(server, tmp_path):
    from gradio_client import Client, handle_file

    good = tmp_path / "good.png"
    Image.open(SAMPLES / "val" / "kodim13.jpg").save(good)
    hole = np.zeros((256, 384), np.uint8)
    hole[100:140, 100:200] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    client = Client(server, verbose=False)

    def call(photo: Path, mask: Path | None = tmp_path / "hole.png"):
        editor = {"background": handle_file(str(photo)), "layers": [], "composite": None}
        mask_file = handle_file(str(mask)) if mask else None
        return client.predict(editor, mask_file, "white = hole", api_name="/inpaint")

    for name, path in _bad_uploads(tmp_path).items():
        with pytest.raises(Exception, match=re.escape(EXPECTED[name])):
            call(path)
        (_, result), _, download = call(good)  # still answering
        assert Path(result).is_file() and Path(download).is_file()
    with pytest.raises(Exception, match=r"cannot read the uploaded mask text\.png"):
        call(good, tmp_path / "text.png")
    with pytest.raises(Exception, match="nothing to fill"):
        call(good, mask=None)


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        missing_prerequisite("Debian's chromium is not installed and installing it needs root")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode:
            missing_prerequisite(f"cannot install chromium ({' '.join(cmd)}): {done.stderr[-500:]}")
    return CHROMIUM


def _screenshot(page, tmp_path: Path, name: str) -> None:
    """A small palette PNG; copied to docs/ when PCONV_UPDATE_SCREENSHOTS=1."""
    page.screenshot(path=str(tmp_path / name))
    shot = Image.open(tmp_path / name).convert("RGB")
    shot.quantize(128).save(tmp_path / name, optimize=True)
    if os.environ.get("PCONV_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(tmp_path / name, REPO / "docs" / name)


def _distance_to_polyline(points: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Distance of each pixel (ys, xs) to the polyline through ``points`` (x, y)."""
    best = np.full(ys.shape, np.inf)
    p = np.stack([xs, ys], axis=1).astype(float)
    for a, b in itertools.pairwise(points):
        t = np.clip(((p - a) @ (b - a)) / max((b - a) @ (b - a), 1e-9), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1))
    return best


@pytest.mark.slow
def test_browser_paint_a_stroke_and_inpaint(server, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    photo = tmp_path / "photo.png"  # PNG: the browser and Pillow decode it identically
    Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB").save(photo)
    original = np.asarray(Image.open(photo))
    height, width = original.shape[:2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        page.goto(server)
        page.wait_for_selector("#editor canvas")
        placeholder = page.locator("#editor").get_by_text("Upload an image")
        for _ in range(3):  # the first upload can land before the page has hydrated
            page.locator("#editor input[type=file]").set_input_files(str(photo))
            try:
                placeholder.wait_for(state="hidden", timeout=10_000)
                break
            except PlaywrightTimeout:
                continue
        page.wait_for_timeout(1000)  # the canvas fits the photo to its size
        zoom_text = page.locator("#editor").get_by_text(re.compile(r"^\d+%$"))
        zoom_text.wait_for()
        zoom = int(zoom_text.inner_text().rstrip("%")) / 100
        box = page.locator("#editor canvas").first.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # image centre
        # A diagonal stroke across the image, in image pixels, drawn with the mouse.
        stroke = np.array([(120 + 6 * i, 100 + 2 * i) for i in range(25)], float)
        screen = [(cx + (x - width / 2) * zoom, cy + (y - height / 2) * zoom) for x, y in stroke]
        page.mouse.move(*screen[0])
        page.mouse.down()
        for point in screen[1:]:
            page.mouse.move(*point, steps=2)
        page.mouse.up()
        _screenshot(page, tmp_path, "app_paint.png")
        page.click("#run")
        link = page.locator("#download a").first
        link.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        _screenshot(page, tmp_path, "app_result.png")
        result = np.asarray(
            Image.open(BytesIO(page.request.get(link.get_attribute("href")).body()))
        )
        hole_src = page.locator("#hole img").first.get_attribute("src")
        hole = np.asarray(Image.open(BytesIO(page.request.get(hole_src).body())).convert("L")) > 127
        browser.close()
    assert result.shape == original.shape and hole.shape == original.shape[:2]
    changed = (result != original).any(axis=2)
    assert changed.any() and not (changed & ~hole).any()  # only hole pixels changed
    ys, xs = np.nonzero(hole)
    # The hole is the stroke: within the brush radius (plus antialiasing) of the drawn path,
    # and the path's points are holes.
    assert _distance_to_polyline(stroke, ys, xs).max() <= BRUSH_RADIUS + 6
    assert all(hole[int(y), int(x)] for x, y in stroke[1:-1])
