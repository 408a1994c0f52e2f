"""Peak memory of ``ssp-net metrics`` (entropy, AvG, NIQE, PIQE) on one large image, by size.

Run by hand:

    python benchmarks/metrics_memory.py [--sizes 2000 4000 8000] [--checkout PATH] [--json results.json]

For every size a gray 8-bit PNG of SIZE x SIZE (a tiled natural-like texture) is written to a
temporary folder, and ``python -m ssp_keras.cli.main metrics IMAGE`` runs in a child process under
``/usr/bin/time -v``: the table gives its peak resident memory (maximum RSS), that per pixel, and its
wall time. ``--checkout PATH`` runs another checkout of the project (``PYTHONPATH=PATH``), e.g. an
older commit, in the same run, for before/after figures on one machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTURE_SIZE = 1024


def write_texture_png(path: str, size: int) -> None:
    """A ``size`` x ``size`` 8-bit gray PNG: a 1/f texture tiled, with a slow ramp (not periodic)."""
    import cv2

    rng = np.random.default_rng(0)
    frequencies = np.fft.fftfreq(TEXTURE_SIZE)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius**1.5
    texture = np.real(np.fft.ifft2(spectrum))
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    repeats = -(-size // TEXTURE_SIZE)
    image = np.tile(texture, (repeats, repeats))[:size, :size]
    image = 0.2 + 0.6 * image * np.linspace(0.6, 1.0, size)[None, :]
    if not cv2.imwrite(path, np.round(image * 255).astype(np.uint8)):
        raise OSError(f"could not write {path}")


def measure(checkout: str, image: str) -> dict:
    """Peak RSS (bytes) and wall seconds of ``ssp-net metrics IMAGE`` run from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": checkout, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    started = time.perf_counter()
    # (cwd too: ``python -m`` puts the working directory first on the path)
    result = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "ssp_keras.cli.main", "metrics", image],
                            capture_output=True, text=True, env=env, cwd=checkout)
    seconds = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return {"exit": result.returncode, "peak_bytes": int(peak.group(1)) * 1024 if peak else None,
            "seconds": seconds, "output": [" ".join(line.split()[1:]) for line in result.stdout.splitlines()[1:2]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--checkout", action="append", default=[], metavar="PATH",
                        help="another checkout to measure beside this one (repeatable)")
    parser.add_argument("--json", metavar="PATH")
    common.add_dry_run_argument(parser)
    args = parser.parse_args()
    checkouts = [REPOSITORY] + [os.path.abspath(path) for path in args.checkout]
    missing = [path for path in checkouts if not os.path.isdir(os.path.join(path, "ssp_keras"))]
    if missing:
        parser.error(f"--checkout: {missing[0]} holds no ssp_keras package")
    if args.dry_run:
        return common.dry_run(args, f"ssp-net metrics on textures of {', '.join(map(str, args.sizes))} px from "
                                    f"{', '.join(checkouts)}")
    print(common.cpu_line())
    rows = []
    with tempfile.TemporaryDirectory(prefix="ssp-metrics-memory-") as folder:
        for size in args.sizes:
            image = os.path.join(folder, f"texture{size}.png")
            write_texture_png(image, size)
            for checkout in checkouts:
                measured = measure(checkout, image)
                rows.append({"checkout": os.path.relpath(checkout, os.path.dirname(REPOSITORY)), "size": f"{size}x{size}",
                             "exit": measured["exit"], "peak_gb": measured["peak_bytes"] / 1e9,
                             "per_pixel": measured["peak_bytes"] / size**2, "seconds": measured["seconds"],
                             "values": " ".join(measured["output"])})
                os.sync()
    common.print_table(rows, [("checkout", "checkout"), ("size", "image"), ("exit", "exit"),
                              ("peak_gb", "peak RSS (GB)", "{:.2f}"), ("per_pixel", "bytes/pixel", "{:.0f}"),
                              ("seconds", "wall s", "{:.1f}"), ("values", "metrics row")])
    if args.json:
        common.write_json(args.json, {"environment": common.environment(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
