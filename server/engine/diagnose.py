"""Turn what ImageMagick printed and how it exited into one ``ConversionError`` (or none).

ImageMagick reports on stderr, one line per exception::

    convert-im6.q16: width or height exceeds limit `in' @ error/cache.c/OpenPixelCache/3928.

We keep the reason (between the program name and the quoted file name), the severity
(warning, error or fatal) and the module, and map them to the protocol's codes. Warnings
usually do not fail a run, except those of a decoder that says the data is damaged: ImageMagick
then still writes an image, grey where the data ran out, which nobody asked for.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from server.engine.errors import ConversionError
from server.engine.run import Completed

_LINE = re.compile(
    r"^(?P<prog>[\w.-]+): (?P<reason>.*?)(?: [`'](?P<subject>[^`']*)')?"
    r" @ (?P<severity>warning|error|fatal)/(?P<module>[\w-]+)\.c/(?P<function>\w+)/\d+\.?$")

_TOO_LARGE = re.compile(
    r"exceeds limit|resources? exhausted|memory allocation failed|list length|"
    r"pixel cache allocation failed|too much image data", re.IGNORECASE)
_TIME = re.compile(r"time limit exceeded", re.IGNORECASE)
_POLICY = re.compile(r"not allowed by the security policy", re.IGNORECASE)
_DISK_FULL = re.compile(r"no space left on device|disk quota", re.IGNORECASE)
#: Warnings that mean the data ran out or is broken. Deliberately narrow: decoders also warn
#: about harmless things ("Corrupt JPEG data: 2 extraneous bytes before marker", "iCCP: known
#: incorrect sRGB profile", unknown TIFF tags) in files that display fine everywhere.
_DAMAGED = re.compile(
    r"premature end of|unexpected end[ -]of[ -]file|insufficient image data|read error on",
    re.IGNORECASE)
_NOTHING_READ = re.compile(r"no images defined|missing .*image|image sequence is required",
                           re.IGNORECASE)
#: Decoders whose warnings about damaged data fail the conversion.
_DECODERS = frozenset({"jpeg", "png", "gif", "webp", "tiff", "bmp", "heic"})


@dataclass(frozen=True)
class Report:
    """One exception line of ImageMagick's stderr."""

    reason: str
    subject: str
    severity: str
    module: str
    function: str


def parse_reports(stderr: str) -> list[Report]:
    """The exception lines of ``stderr``; lines in another shape are kept as errors."""
    reports = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match is None:
            reports.append(Report(line, "", "error", "", ""))
        else:
            reports.append(Report(match["reason"], match["subject"] or "", match["severity"],
                                  match["module"], match["function"]))
    return reports


def diagnose(done: Completed, *, input_coder: str, output_coder: str) -> ConversionError | None:
    """The error this run amounts to, or None when it succeeded."""
    reports = parse_reports(done.stderr)
    if done.returncode < 0:
        return _signalled(-done.returncode)
    serious = [r for r in reports if r.severity != "warning"]
    for report in reports:
        text = report.reason
        if _TIME.search(text):
            return ConversionError("timeout", "conversion hit ImageMagick's time limit")
        if _POLICY.search(text):
            return _policy_refusal(report.subject, input_coder, output_coder)
        if _TOO_LARGE.search(text):
            return ConversionError("too_large", f"image is over a resource limit ({_short(text)})")
        if _DISK_FULL.search(text):
            return ConversionError("internal", f"the worker's disk is full ({_short(text)})",
                                   permanent=False)
    for report in reports:
        if (report.severity == "warning" and report.module in _DECODERS
                and _DAMAGED.search(report.reason)):
            return _damaged(report)
    if done.returncode == 0:
        return None
    # A decoder's own complaint is the best reason; an encoder's is ours, not the input's.
    for report in serious:
        if report.module in _DECODERS or report.module in ("blob", "constitute"):
            if report.function.lower().startswith("write"):
                return ConversionError("internal",
                                       f"cannot encode the output ({_short(report.reason)})")
            return _damaged(report)
    # Some decoders fail silently; what follows then is "no images defined" and the like.
    if any(_NOTHING_READ.search(report.reason) for report in serious):
        return ConversionError("corrupt_input", "the image data cannot be decoded")
    reason = _short(serious[0].reason) if serious else f"exit status {done.returncode}"
    return ConversionError("internal", f"ImageMagick failed ({reason})")


def _damaged(report: Report) -> ConversionError:
    return ConversionError("corrupt_input",
                           f"the image data is damaged or cut short ({_short(report.reason)})")


def _signalled(number: int) -> ConversionError:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    if number == signal.SIGKILL:
        # Not our timeout (that raises before this); the kernel's OOM killer, most likely.
        return ConversionError("internal", "ImageMagick was killed (SIGKILL), probably out of "
                               "memory", permanent=False)
    return ConversionError("corrupt_input", f"ImageMagick crashed on this image ({name})")


def _policy_refusal(subject: str, input_coder: str, output_coder: str) -> ConversionError:
    coder = subject.split(":", 1)[0].upper()
    if coder == input_coder.upper():
        return ConversionError("unsupported_input",
                               f"this worker's security policy refuses to read {coder}")
    if coder == output_coder.upper():
        return ConversionError("unsupported_output",
                               f"this worker's security policy refuses to write {coder}")
    # The policy denies something the command itself needs: every job would fail here.
    return ConversionError("internal", f"the security policy refuses {subject or 'an operation'}"
                           " that the conversion needs (run imgserver check)", permanent=False)


def _short(reason: str, limit: int = 120) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
