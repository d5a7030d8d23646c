"""Per-conversion resource limits and the minimal environment of the ImageMagick child."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one conversion may use. Defaults suit a worker running a few processes at once.

    Width, height, pixels and frames are checked from the header before decoding and passed to
    ImageMagick as well; memory, map and disk bound its pixel cache (past memory it spills to
    map, then to disk under the job's workdir). The policy file holds the ceilings: a value
    above them is lowered to them by ImageMagick itself.
    """

    max_width: int = 16384
    max_height: int = 16384
    max_pixels: int = 128_000_000
    max_frames: int = 500
    max_input_bytes: int = 256 * MIB
    memory_bytes: int = 512 * MIB
    map_bytes: int = 1024 * MIB
    disk_bytes: int = 2048 * MIB
    #: Threads per ImageMagick process: 1, because workers run several processes in parallel.
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_width", "max_height", "max_pixels", "max_frames", "max_input_bytes",
                     "memory_bytes", "map_bytes", "disk_bytes", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")


DEFAULT_LIMITS = Limits()

#: Nothing of the parent's environment is passed on (no AWS_*, no HOME: ImageMagick would read
#: ~/.config/ImageMagick/policy.xml after ours, and rules loaded later win).
_PATH = "/usr/local/bin:/usr/bin:/bin"


def child_environment(policy_dir: Path, workdir: Path, limits: Limits, timeout: float
                      ) -> dict[str, str]:
    """The complete environment of one ImageMagick run."""
    temporary = str(workdir)
    return {
        "PATH": _PATH,
        "LANG": "C",
        "LC_ALL": "C",
        "MAGICK_CONFIGURE_PATH": str(policy_dir),
        # The pixel cache spills here past the memory limit; the caller removes the workdir.
        "MAGICK_TEMPORARY_PATH": temporary,
        "MAGICK_TMPDIR": temporary,
        "TMPDIR": temporary,
        "MAGICK_THREAD_LIMIT": str(limits.threads),
        "OMP_NUM_THREADS": str(limits.threads),
        "MAGICK_WIDTH_LIMIT": str(limits.max_width),
        "MAGICK_HEIGHT_LIMIT": str(limits.max_height),
        "MAGICK_AREA_LIMIT": str(limits.max_pixels),
        "MAGICK_MEMORY_LIMIT": str(limits.memory_bytes),
        "MAGICK_MAP_LIMIT": str(limits.map_bytes),
        "MAGICK_DISK_LIMIT": str(limits.disk_bytes),
        # Room for the tag layer and the separator that the command adds to the frames.
        "MAGICK_LIST_LENGTH_LIMIT": str(limits.max_frames + 16),
        # ImageMagick's own clock: a backstop that ends the process even if this worker dies
        # before it can kill it (it is in its own session, so it would outlive us).
        "MAGICK_TIME_LIMIT": str(max(1, math.ceil(timeout) + 5)),
    }
