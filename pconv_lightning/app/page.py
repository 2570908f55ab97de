"""The Gradio page of ``pconv app`` (imported only when the app starts: Gradio is slow to
import). Upload decoding errors become messages in the page: the editor's and the mask's
decoding raise :class:`gradio.Error` naming the upload. Each request is bounded by
:mod:`pconv_lightning.app.limits` (interactive pixel cap, time limit)."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio reads it

import gradio as gr
import numpy as np
from PIL import Image, UnidentifiedImageError

from pconv_lightning.app.inputs import (
    BRUSH_COLOR,
    DEFAULT_MAX_PIXELS,
    INTRO,
    POLARITY,
    InpaintError,
    as_displayed,
    editor_inputs,
    exif_orientation,
    photo_as_kept,
)
from pconv_lightning.app.limits import (
    DEFAULT_TIME_LIMIT,
    DEFAULT_WORK_PIXELS,
    DeadlineEngine,
    RequestTimeout,
    capped_inpaint,
)
from pconv_lightning.inference.command import kept_mode
from pconv_lightning.inference.predictor import Inpainter


def _upload_error(what: str, name: str | None, err: Exception) -> gr.Error:
    if isinstance(err, UnidentifiedImageError):
        reason = "not an image file, or empty, or a format Pillow cannot read"
    elif isinstance(err, Image.DecompressionBombError | Image.DecompressionBombWarning):
        reason = f"too many pixels ({err})"
    else:
        reason = str(err)
    return gr.Error(
        f"cannot read the uploaded {what} {name or ''}: {reason}", print_exception=False
    )


def _readable_uploads(component: gr.components.Component, what: str) -> None:
    """Make ``component`` raise a page message (naming the upload) when Gradio cannot decode
    it. The instance's ``preprocess`` is wrapped rather than subclassing the component:
    Gradio writes a ``.pyi`` stub next to the module of every component subclass."""
    preprocess = component.preprocess

    def wrapped(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except Exception as err:  # PIL raises many types on bad bytes
            upload = getattr(payload, "background", payload)
            raise _upload_error(what, getattr(upload, "orig_name", None), err) from err

    component.preprocess = wrapped


def _upload_orientation(editor: gr.ImageEditor, payload: Any) -> int:
    """The EXIF orientation of the photo uploaded to ``editor`` (1 when unknown)."""
    background = getattr(payload, "background", None)
    if getattr(payload, "id", None) is not None:  # sent in pieces: held in blob storage
        cached = editor.blob_storage.get(payload.id)
        background = getattr(cached, "background", None)
    source = getattr(background, "path", background)
    if source is None:
        return 1
    try:
        opened = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        with opened as image:
            return exif_orientation(image)
    except Exception:  # undecodable: the editor's own decoding reports it
        return 1


def _photo_as_displayed(editor: gr.ImageEditor) -> None:
    """Turn the editor's photo by its EXIF orientation, as the browser shows it and as
    ``pconv inpaint`` reads it: the paint layers are drawn on the photo as displayed, and
    Gradio hands the photo over as stored."""
    preprocess = editor.preprocess

    def wrapped(payload: Any) -> Any:
        orientation = _upload_orientation(editor, payload)
        value = preprocess(payload)
        if value and value.get("background") is not None and orientation != 1:
            value["background"] = as_displayed(np.asarray(value["background"]), orientation)
        return value

    editor.preprocess = wrapped


def build_app(
    inpainter: Inpainter,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    work_pixels: int = DEFAULT_WORK_PIXELS,
    time_limit: float = DEFAULT_TIME_LIMIT,
    results: Path | None = None,
) -> gr.Blocks:
    """The page (not launched); its API endpoint is ``/inpaint``. Sets Pillow's
    decompression-bomb limit to ``max_pixels`` for this process and makes it an error.
    Results go to ``results`` (default: a new temporary folder)."""
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow refuses larger images on open ...
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # ... from 1x, not 2x
    results = results or Path(tempfile.mkdtemp(prefix="pconv-app-"))

    def run(editor: dict[str, Any] | None, mask_path: str | None, polarity: str):
        try:
            image, valid = editor_inputs(editor, mask_path, POLARITY[polarity], max_pixels)
            engine = DeadlineEngine(inpainter.engine, time_limit)
            bounded = Inpainter(engine, inpainter.tile_size, inpainter.overlap)
            result, notice = capped_inpaint(bounded, image, valid, work_pixels)
            kept = photo_as_kept(editor["background"])  # grey stays grey, alpha stays
            result = kept_mode(kept, result, valid)
            image = kept
        except (InpaintError, ValueError, OSError, RequestTimeout) as err:
            raise gr.Error(
                str(err).replace(str(mask_path), "(mask)"), print_exception=False
            ) from err
        if notice:
            gr.Warning(notice)
        results.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(dir=results)) / "inpainted.png"
        Image.fromarray(result).save(target)
        hole = np.where(valid == 0, 255, 0).astype(np.uint8)
        return (image, result), hole, str(target)

    with gr.Blocks(title="PConv inpainting", analytics_enabled=False) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                editor = gr.ImageEditor(
                    label="Photo: paint the hole",
                    type="numpy",
                    image_mode="RGBA",
                    sources=["upload", "clipboard"],
                    brush=gr.Brush(colors=[BRUSH_COLOR], color_mode="fixed", default_size=12),
                    eraser=gr.Eraser(default_size=12),
                    transforms=(),
                    layers=False,
                    format="png",
                    elem_id="editor",
                )
                with gr.Accordion("Or upload a mask", open=False):
                    mask = gr.Image(
                        label="Mask (same size as the photo)",
                        type="filepath",
                        image_mode=None,
                        sources=["upload"],
                        elem_id="mask",
                    )
                    polarity = gr.Radio(list(POLARITY), value="white = hole", label="Mask polarity")
                button = gr.Button("Inpaint", variant="primary", elem_id="run")
            with gr.Column():
                compare = gr.ImageSlider(label="Original | result", format="png", elem_id="compare")
                hole = gr.Image(label="Filled hole (white)", format="png", elem_id="hole")
                download = gr.File(label="Download the result (PNG)", elem_id="download")
        _photo_as_displayed(editor)
        _readable_uploads(editor, "photo")
        _readable_uploads(mask, "mask")
        button.click(run, [editor, mask, polarity], [compare, hole, download], api_name="inpaint")
    return app
