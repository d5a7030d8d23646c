"""Build the argv of the one ImageMagick process that converts and tags an image.

The lab ran two processes joined by a shell pipe::

    convert -size 200x50 xc:none -matte -pointsize 20 -draw "text 10,30 'processed by EC2'" \\
        miff:- | composite -tile - IN OUT

We draw the same 200×50 tile in a parenthesised sub-list, keep it in memory (``mpr:``), fill a
transparent copy of the image with it as a tile pattern and compose that over the image: one
process, no shell, and the output is pixel-identical to the lab's for its text and size.

Everything user-controlled ends up in exactly one argv item, the ``-annotate`` text, escaped by
``annotate_text``; file names are fixed (``in``, ``out.png``, relative to the workdir) and every
coder is named explicitly, so neither a name nor content chooses how ImageMagick reads a file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from server.engine.detect import Engine
from shared.protocol import TagOptions

#: The in-memory image that holds the tag tile for the length of one run.
TILE = "mpr:imgpipe-tile"
#: Output formats that keep every frame of an animated input; the others get its first frame.
ANIMATED_OUTPUTS = frozenset({"gif", "webp"})
ANIMATED_INPUTS = frozenset({"gif", "webp"})
#: What ``-print`` reports about the final image list, parsed back by the caller.
PRINT_FORMAT = "imgpipe-result %w %h %n\\n"

#: Below this many bits per pixel a JPEG is taken for graphics (a screenshot, a logo saved as
#: JPEG): photos at the qualities cameras and phones use take 2 to 6 (README.md beside this file).
PHOTO_BITS_PER_PIXEL = 2.0

#: PNG of a photo: zlib's run-length strategy after PNG's adaptive filters. A decoded JPEG
#: photo is noise at the pixel level, so the long string matches that levels 5-7 search for
#: are rare and the search is wasted: RLE is 1.3-4x faster and its output is no larger (on
#: graphics it is 50-180% larger, so it is used for photos only).
_PNG_FOR_PHOTOS = ("-define", "png:compression-level=5", "-define", "png:compression-filter=5",
                   "-define", "png:compression-strategy=3")

#: Encoder settings by output format; README.md beside this file has the measurements.
_OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    # zlib level 5 instead of ImageMagick's 7: 2-3× faster, and for photos no larger (for
    # flat graphics about 5% larger).
    "png": ("-define", "png:compression-level=5"),
    # Only for sources that are not JPEG (see output_options). 4:4:4 chroma because such
    # sources are often screenshots, whose coloured text 4:2:0 would smear.
    "jpeg": ("-quality", "85", "-sampling-factor", "1x1"),
    # LZW: lossless, read everywhere, less than half the size of the uncompressed default and
    # ten times faster than Deflate.
    "tiff": ("-compress", "lzw"),
    "avif": ("-quality", "60"),
}


def output_options(input_format: str, output_format: str, *, photo: bool = False
                   ) -> tuple[str, ...]:
    """Encoder options. A JPEG source keeps its own quality for JPEG and WebP output (as
    ImageMagick, and so the lab, do): re-encoding a quality-75 photo at 92 only adds bytes.
    ``photo`` (see ``looks_like_photo``) picks the faster PNG settings for photos."""
    if input_format == "jpeg" and output_format in ("jpeg", "webp"):
        return ()
    if photo and output_format == "png":
        return _PNG_FOR_PHOTOS
    return _OUTPUT_OPTIONS.get(output_format, ())


def looks_like_photo(input_format: str, input_bytes: int, width: int | None,
                     height: int | None) -> bool:
    """A JPEG of at least ``PHOTO_BITS_PER_PIXEL``: a photo, not graphics saved as JPEG."""
    if input_format != "jpeg" or not width or not height:
        return False
    return 8 * input_bytes / (width * height) >= PHOTO_BITS_PER_PIXEL


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ZERO_WIDTH_SPACE = "\u200b"


def annotate_text(text: str) -> str:
    """``text`` escaped so that ``-annotate`` draws it literally, character for character.

    ImageMagick interprets annotate text: ``%w`` / ``%[exif:*]`` / ``%[fx:...]`` expand image
    properties, a backslash escapes the next character (``\\n`` is a new line), XML entities
    (``&lt;``, ``&amp;``) are decoded, and a text that begins with ``@`` (after blanks) names a
    file whose content is drawn instead. Percent signs are doubled, backslashes doubled and
    ampersands written as ``&amp;``; a leading ``@`` gets a zero-width space in front, so it
    is drawn rather than read (the policy refuses ``@*`` paths as a second line of defence).
    Control characters (already refused by the protocol) become spaces.
    """
    text = _CONTROL.sub(" ", text)
    text = text.replace("\\", "\\\\").replace("%", "%%").replace("&", "&amp;")
    if text.lstrip().startswith("@"):
        text = _ZERO_WIDTH_SPACE + text
    return text


@dataclass(frozen=True)
class TileGeometry:
    """The tag tile for a point size: the lab's 200×50 tile with the text at +10+30 at 20 pt,
    scaled with the point size and widened to fit a longer text."""

    canvas_width: int  # drawing canvas, wider than any text of this length could be
    height: int
    x: int
    y: int
    min_width: int  # the tile is at least this wide (200 at 20 pt, as in the lab)
    right_pad: int  # gap after the text's last ink when the text is wider than min_width

    @classmethod
    def for_text(cls, text: str, point_size: int, max_width: int) -> TileGeometry:
        p = point_size
        x = round(p / 2)
        # No glyph of a text font is much wider than 1.2 em; the canvas is trimmed back anyway.
        canvas = x + math.ceil(len(text) * p * 1.2) + 2 * p
        return cls(canvas_width=max(1, min(canvas, max_width)), height=round(2.5 * p), x=x,
                   y=round(1.5 * p), min_width=10 * p, right_pad=round(1.25 * p))


def wants_frames(input_format: str, output_format: str) -> bool:
    """Whether every frame is kept (animated in, animated out) or only the first."""
    return input_format in ANIMATED_INPUTS and output_format in ANIMATED_OUTPUTS


def build_args(engine: Engine, *, input_format: str, output_format: str,
               tag: TagOptions | None, source: str, output: str, max_width: int = 16384,
               layer: tuple[int, int] | None = None, photo: bool = False) -> list[str]:
    """The full argv (binary first) converting ``source`` to ``output`` (workdir-relative).

    ``layer`` is a size that covers the image once oriented (see ``tag_layer_size``): the
    tiled tag layer is then made by the ``tile:`` coder, which copies rows, instead of by
    ``-draw``, which fills it pixel by pixel (0.05 s per MP). ``photo``: see output_options.
    """
    frames = wants_frames(input_format, output_format)
    args = [*engine.argv0, "-respect-parentheses"]
    text = None if tag is None else annotate_text(tag.text)
    if tag is not None and text is not None and tag.text.strip() and tag.mode == "tile":
        args += _tile_prelude(engine, tag, text, max_width)
    args.append(f"{input_format}:{source}" + ("" if frames else "[0]"))
    # Apply the EXIF orientation before anything is drawn, so the tag reads upright.
    args += ["-auto-orient"]
    if input_format in ANIMATED_INPUTS:
        args += ["-coalesce"]  # full frames: a GIF's later frames may be partial patches
    args += ["+repage", "-colorspace", "sRGB"]  # CMYK JPEG in, web colours out
    if tag is not None and text is not None and tag.text.strip():
        args += ["null:", "("]
        if tag.mode == "tile" and layer is not None and engine.tile_coder:
            # "copy": the texture's pixels, alpha included, replace the new canvas's. A layer
            # larger than the image is clipped by the composite.
            args += ["-compose", "copy", "-size", f"{layer[0]}x{layer[1]}", f"tile:{TILE}",
                     "+repage"]
        elif tag.mode == "tile":
            args += ["-clone", "0", "-tile", TILE, "-draw", "color 0,0 reset"]
        else:
            pad = max(4, round(tag.point_size / 2))
            # On a transparent copy rather than the image itself: annotating in place turns
            # the alpha channel on, and a JPEG's PNG output would grow by a quarter.
            args += ["-clone", "0", "-alpha", "transparent", *_font(engine),
                     "-pointsize", str(tag.point_size), "-fill", tag.color,
                     "-gravity", "SouthEast", "-annotate", f"+{pad}+{pad}", text]
        args += [")", "-compose", "over", "-layers", "composite"]
    if output_format == "jpeg":
        args += ["-background", "white", "-alpha", "remove", "-alpha", "off"]
    if frames and output_format == "gif":
        args += ["-layers", "optimize"]
    args += ["-strip", *output_options(input_format, output_format, photo=photo),
             "-print", PRINT_FORMAT, f"{output_format}:{output}"]
    return args


def tag_layer_size(width: int | None, height: int | None, may_rotate: bool,
                   max_pixels: int) -> tuple[int, int] | None:
    """A size the tag layer can have before ImageMagick has oriented the image, or None.

    The header's size when the image cannot turn; when it may (EXIF orientation), the square
    on its longer side, which covers it either way, unless that square would be much bigger
    than the image (a panorama): then None, and the layer is drawn at the image's own size.
    """
    if not width or not height:
        return None
    if not may_rotate:
        return width, height
    side = max(width, height)
    if side * side > min(2 * width * height, max_pixels):
        return None
    return side, side


def _tile_prelude(engine: Engine, tag: TagOptions, text: str, max_width: int) -> list[str]:
    """Draw the tile into ``TILE``: the text on a transparent canvas, cut back to its width.

    The canvas is drawn generously wide, trimmed to the ink, then put back on a canvas from
    the origin to the ink's right edge plus padding (at least ``min_width``) with the ink where
    it was drawn: for the lab's text this gives back its exact 200×50 tile.
    """
    g = TileGeometry.for_text(tag.text, tag.point_size, max_width)
    page = (f"%[fx:min({g.canvas_width},max({g.min_width},page.x+w+{g.right_pad}))]"
            f"x{g.height}+%[fx:page.x]+%[fx:page.y]")
    return ["(", "-size", f"{g.canvas_width}x{g.height}", "xc:none", *_font(engine),
            "-pointsize", str(tag.point_size), "-fill", tag.color,
            "-annotate", f"+{g.x}+{g.y}", text,
            "-trim", "-set", "page", page, "-background", "none", "-flatten",
            "-write", TILE, "+delete", ")", "+size"]


def _font(engine: Engine) -> list[str]:
    font = engine.font_file or engine.font
    return ["-font", font] if font else []
