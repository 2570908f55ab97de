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
import tempfile
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


def _client(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A gradio_client of ``server`` downloading into ``tmp_path``; its temporary folder is
    ``tmp_path`` too, where it leaves an empty folder behind per download."""
    from gradio_client import Client

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return Client(server, verbose=False, download_files=str(tmp_path / "downloads"))


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


def test_malformed_uploads_get_messages_and_the_server_stays_up(server, tmp_path, monkeypatch):
    from gradio_client import handle_file

    good = tmp_path / "good.png"
    Image.open(SAMPLES / "val" / "kodim13.jpg").save(good)
    hole = np.zeros((256, 384), np.uint8)
    hole[100:140, 100:200] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    client = _client(server, tmp_path, monkeypatch)

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


def _portrait_phone_photo(root: Path) -> tuple[Path, np.ndarray]:
    """A JPEG stored landscape (384x256) with EXIF orientation 6, as phones write portrait
    photos; returns it and its pixels as displayed (256x384), decoded as `pconv inpaint` does."""
    from pconv_lightning.data.images import load_rgb

    stored = Image.open(SAMPLES / "val" / "kodim13.jpg").convert("RGB").resize((384, 256))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = root / "portrait.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    displayed = np.asarray(load_rgb(path))
    assert displayed.shape == (384, 256, 3)  # taller than wide, as displayed
    return path, displayed


def test_the_app_sees_the_photo_as_displayed_like_the_cli(server, tmp_path, monkeypatch):
    """EXIF orientation 6: paint drawn on the photo as displayed is accepted, the result is
    the photo as displayed, and it is exactly what `pconv inpaint` gives for the same photo,
    hole and network;
    a mask drawn on the stored (sideways) pixels is refused, naming both sizes."""
    from gradio_client import handle_file

    photo, displayed = _portrait_phone_photo(tmp_path)
    height, width = displayed.shape[:2]
    paint = np.zeros((height, width, 4), np.uint8)
    paint[250:300, 60:140] = (255, 0, 160, 180)  # a stroke low on the displayed photo
    Image.fromarray(paint, "RGBA").save(tmp_path / "paint.png")
    client = _client(server, tmp_path, monkeypatch)
    editor = {
        "background": handle_file(str(photo)),
        "layers": [handle_file(str(tmp_path / "paint.png"))],
        "composite": None,
    }
    (_, result), hole, _ = client.predict(editor, None, "white = hole", api_name="/inpaint")
    result = np.asarray(Image.open(result).convert("RGB"))
    hole = np.asarray(Image.open(hole).convert("L")) > 127
    assert result.shape == displayed.shape and hole.shape == (height, width)
    assert np.array_equal(hole, paint[..., 3] > 0)
    assert np.array_equal(result[~hole], displayed[~hole])
    # `pconv inpaint`, the server's network, the same photo and hole: the same result
    torch.manual_seed(0)
    save_network(PConvUNet(layers=4), tmp_path / "net.safetensors")  # as the fixture does
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(tmp_path / "mask.png")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pconv_lightning",
            "inpaint",
            f"--checkpoint={tmp_path / 'net.safetensors'}",
            f"--image={photo}",
            f"--mask={tmp_path / 'mask.png'}",
            f"--output={tmp_path / 'cli'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "cli" / "portrait.png")), result)
    sideways = np.zeros((width, height), np.uint8)  # drawn on the stored pixels
    sideways[60:140, 100:150] = 255
    Image.fromarray(sideways).save(tmp_path / "sideways.png")
    editor["layers"] = []
    with pytest.raises(Exception, match="the mask is 384x256 but the photo is 256x384"):
        client.predict(
            editor, handle_file(str(tmp_path / "sideways.png")), "white = hole", api_name="/inpaint"
        )


def test_grey_and_transparent_photos_keep_their_mode(server, tmp_path, monkeypatch):
    """As in `pconv inpaint`: a grey photo gets a grey result, a transparent one keeps its
    alpha (the fill is opaque where the hole was); every valid pixel is the upload's."""
    from gradio_client import handle_file

    rng = np.random.default_rng(4)
    hole = np.zeros((64, 96), np.uint8)
    hole[20:40, 30:60] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    grey = rng.integers(40, 200, (64, 96), dtype=np.uint8)
    rgba = rng.integers(40, 200, (64, 96, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:, :20, 3] = 0
    rgba[50:, :, 3] = 100
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    client = _client(server, tmp_path, monkeypatch)
    inside = hole == 255
    for name, original, mode in (("grey", grey, "L"), ("rgba", rgba, "RGBA")):
        editor = {"background": handle_file(str(tmp_path / f"{name}.png")), "layers": []}
        editor["composite"] = None
        mask = handle_file(str(tmp_path / "hole.png"))
        _, _, download = client.predict(editor, mask, "white = hole", api_name="/inpaint")
        result = Image.open(download)
        assert result.mode == mode, name
        pixels = np.asarray(result)
        assert np.array_equal(pixels[~inside], original[~inside]), name
        if mode == "RGBA":
            assert (pixels[inside, 3] == 255).all()
