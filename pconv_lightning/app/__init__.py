"""``pconv app``, the web page: the command (:mod:`~pconv_lightning.app.command`), the Gradio
page (:mod:`~pconv_lightning.app.page`), what it takes from the page
(:mod:`~pconv_lightning.app.inputs`) and the per-request bounds
(:mod:`~pconv_lightning.app.limits`). Imports go one way: the command imports the page, the
page the limits and the inputs, never the other way round."""

from pconv_lightning.moved import moved_names

# `pconv_lightning.app` was the command's module: its names, for one release.
__getattr__ = moved_names(
    __name__,
    {
        "main": "pconv_lightning.app.command",
        "InpaintError": "pconv_lightning.app.inputs",
        "editor_inputs": "pconv_lightning.app.inputs",
    },
)
