"""A small preview of a finished image.

The image is decoded and shrunk on a thread (``load_thumbnail``), never on the UI thread; the
widget only shows the ready thumbnail. textual-image draws it with the best the terminal
offers (Kitty graphics, Sixel, or coloured half blocks); where stdout is no terminal it falls
back to plain Unicode shading, and a line of text always says what the image is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

# Importing textual_image queries the terminal once; the dashboard imports this module before
# Textual takes over the terminal (see tui.app).
from textual_image.widget import Image as ImageWidget

#: Thumbnails are at most this big: enough for ~40x20 cells, cheap to draw.
THUMBNAIL: Final = (160, 120)
#: Decoding refuses images larger than this many pixels (a preview is no reason to use GBs).
MAX_PIXELS: Final = 50_000_000


def load_thumbnail(path: Path) -> tuple[Any | None, str]:
    """Decode and shrink ``path``; returns (PIL image or None, a line describing it).

    Blocking: call it from a thread worker.
    """
    try:
        with PILImage.open(path) as image:
            width, height = image.size
            kind = (image.format or path.suffix.lstrip(".")).lower()
            if width * height > MAX_PIXELS:
                return None, f"{kind} {width}×{height}: too large to preview"
            image.draft("RGB", THUMBNAIL)  # JPEG: decode at a reduced scale
            thumb = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            thumb.thumbnail(THUMBNAIL)
    except FileNotFoundError:
        return None, "output file is gone"
    except (OSError, ValueError, PILImage.DecompressionBombError) as error:
        return None, f"no preview: {error}"
    return thumb, f"{kind} {width}×{height}"


class Preview(Vertical):
    """The thumbnail (or nothing) above one line of text."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.image = ImageWidget(None, id="preview-image")
        self.caption = Static("", id="preview-text")

    def compose(self) -> ComposeResult:
        yield self.image
        yield self.caption

    def show(self, image: Any | None, text: str) -> None:
        self.image.image = image
        self.image.display = image is not None
        self.caption.update(text)
