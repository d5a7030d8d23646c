"""The images the benchmark converts, generated afresh by the real ImageMagick on every run.

"Photos" are plasma fractals with a light Gaussian grain, saved as JPEG quality 90: smooth
colour fields like a sky or a wall, with the pixel noise every camera adds. The grain matters:
without it a decoded JPEG is unnaturally smooth and zlib's slow string search pays off far
more than on real photos (RESULTS.md has both). Every image has its own seed, so no two files
are alike and every run sees the same bytes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.procs import CONVERT
from server import engine as _engine_package

#: 1 MP and 12 MP, both 4:3 like a camera's frame.
ONE_MP: Final = (1152, 864)
TWELVE_MP: Final = (4000, 3000)
#: About 50 MP: the 12 MP photo enlarged twice in each direction.
FIFTY_MP: Final = (8000, 6000)
SMALL: Final = (320, 240)
#: The 1,000 files of the scale run: tiles of one plasma, cut in one ImageMagick run.
TILE: Final = (128, 96)
GRAIN: Final = "0.3"
ENGINE_POLICY_DIR: Final = Path(_engine_package.__file__).parent / "config"
QUALITY: Final = "90"


@dataclass(frozen=True)
class Corpus:
    root: Path
    engine: dict[str, Path]  # "1MP", "12MP"
    throughput: list[Path]
    small: Path
    scale: list[Path]
    huge: Path  # ~50 MP, for the worker's memory


def _run(argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    subprocess.run([CONVERT, *argv], check=True, capture_output=True, timeout=300, env=env)


def photo_args(path: Path, size: tuple[int, int], seed: int, grain: str = GRAIN
               ) -> list[str]:
    width, height = size
    args = ["-seed", str(seed), "-size", f"{width}x{height}", "plasma:fractal"]
    if float(grain) > 0:
        args += ["-attenuate", grain, "+noise", "Gaussian"]
    return [*args, "-depth", "8", "-quality", QUALITY, f"jpeg:{path}"]


def generate(root: Path, *, throughput_files: int, scale_files: int, huge: bool = True
             ) -> Corpus:
    """Write every image under ``root``; runs as many ImageMagick processes as there are CPUs."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("engine", "throughput", "scale"):
        (root / sub).mkdir(exist_ok=True)
    engine = {"1MP": root / "engine" / "photo-1mp.jpg", "12MP": root / "engine" / "photo-12mp.jpg"}
    throughput = [root / "throughput" / f"photo-{i:03d}.jpg" for i in range(throughput_files)]
    small = root / "small.jpg"
    jobs: list[list[str]] = [
        photo_args(engine["12MP"], TWELVE_MP, seed=12),
        photo_args(engine["1MP"], ONE_MP, seed=1),
        photo_args(small, SMALL, seed=320),
        *(photo_args(path, ONE_MP, seed=1000 + i) for i, path in enumerate(throughput)),
    ]
    columns = 25
    rows = -(-scale_files // columns)
    scale_dir = root / "scale"
    if scale_files:
        jobs.append(["-seed", "7", "-size", f"{TILE[0] * columns}x{TILE[1] * rows}",
                     "plasma:fractal", "-depth", "8", "-crop", f"{TILE[0]}x{TILE[1]}",
                     "+repage", "-quality", "85", f"jpeg:{scale_dir}/tile-%04d.jpg"])
    fifty = root / "engine" / "photo-50mp.jpg"
    with ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0)))) as pool:
        first, *rest = [pool.submit(_run, job) for job in jobs]
        first.result()  # the 12 MP photo, which the ~50 MP one is made from
        if huge:
            # Under the engine's policy: the system's 256 MiB memory limit would page the
            # pixel cache to disk and take a minute; ours allows 1 GiB (plasma itself is
            # generated under the system's policy, since ours refuses that coder).
            rest.append(pool.submit(
                _run, [f"jpeg:{engine['12MP']}", "-resize", f"{FIFTY_MP[0]}x{FIFTY_MP[1]}!",
                       "-quality", QUALITY, f"jpeg:{fifty}"],
                {**os.environ, "MAGICK_CONFIGURE_PATH": str(ENGINE_POLICY_DIR)}))
        for future in rest:
            future.result()
    tiles = sorted(scale_dir.glob("tile-*.jpg"))
    for extra in tiles[scale_files:]:
        extra.unlink()
    return Corpus(root=root, engine=engine, throughput=throughput, small=small,
                  scale=tiles[:scale_files], huge=fifty)
