"""Speed of the no-reference metrics (entropy, AvG, NIQE, PIQE) on one 384x384 image, one CPU core.

Run by hand:

    python benchmarks/metrics_speed.py [--runs 20] [--image PATH] [--json results.json]

The process is pinned to one core and the numerical libraries to one thread before NumPy is
imported, so the numbers are single-core figures. Each metric is called once to warm up, then
``--runs`` times; the table gives the median and the fastest call in milliseconds. Without
``--image`` a deterministic 384x384 texture with a natural-image-like 1/f spectrum is used.
"""

from __future__ import annotations

import os

# One thread everywhere, before NumPy/OpenCV load their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ssp_keras.metrics import average_gradient, entropy, niqe, piqe  # noqa: E402
from ssp_keras.utils.files import atomic_write_bytes  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

IMAGE_SIZE = 384


def pin_to_one_core() -> str:
    """Restrict this process to one CPU (where the OS allows it); describe what was done."""
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU {core}"
    return "not pinned (no sched_setaffinity); libraries limited to one thread"


def synthetic_image(size: int = IMAGE_SIZE, seed: int = 0) -> np.ndarray:
    """A deterministic gray texture with a 1/f^1.5 amplitude spectrum, float32 [size, size] in [0, 1]."""
    rng = np.random.default_rng(seed)
    frequencies = np.fft.fftfreq(size)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius**1.5
    texture = np.real(np.fft.ifft2(spectrum))
    return ((texture - texture.min()) / (texture.max() - texture.min())).astype(np.float32)


def load_image(path: str) -> np.ndarray:
    """An image file as float32 [384, 384] gray in [0, 1] (center-cropped or resized to 384x384)."""
    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"cannot read image {path}")
    if min(gray.shape) < IMAGE_SIZE:
        gray = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    top, left = (gray.shape[0] - IMAGE_SIZE) // 2, (gray.shape[1] - IMAGE_SIZE) // 2
    return gray[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE].astype(np.float32) / 255.0


def time_metric(metric, image: np.ndarray, runs: int) -> dict:
    value = metric(image)  # warm-up: caches, lazy imports
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        metric(image)
        durations.append(time.perf_counter() - start)
    return {
        "value": float(value),
        "median_ms": 1000 * statistics.median(durations),
        "min_ms": 1000 * min(durations),
        "runs": runs,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed calls per metric (default 20)")
    parser.add_argument("--image", help="image file to use instead of the synthetic texture")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    common.add_dry_run_argument(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.dry_run:
        return common.dry_run(args, f"entropy, AvG, NIQE and PIQE on {args.image or 'a synthetic texture'} "
                                    f"({IMAGE_SIZE}x{IMAGE_SIZE}), {args.runs} runs each, one core")

    pinning = pin_to_one_core()
    image = load_image(args.image) if args.image else synthetic_image()
    metrics = {"entropy": entropy, "average_gradient": average_gradient, "niqe": niqe, "piqe": piqe}
    results = {name: time_metric(metric, image, args.runs) for name, metric in metrics.items()}
    niqe_plus_piqe = results["niqe"]["median_ms"] + results["piqe"]["median_ms"]

    source = f"image {args.image}" if args.image else "synthetic texture"
    print(common.cpu_line())
    print(f"metrics on a {IMAGE_SIZE}x{IMAGE_SIZE} {source}, {args.runs} runs, {pinning}")
    print(f"{'metric':<18}{'value':>10}{'median ms':>12}{'min ms':>10}")
    for name, result in results.items():
        print(f"{name:<18}{result['value']:>10.4f}{result['median_ms']:>12.2f}{result['min_ms']:>10.2f}")
    print(f"{'niqe + piqe':<18}{'':>10}{niqe_plus_piqe:>12.2f}")

    if args.json:
        report = {
            "image": args.image or "synthetic 1/f texture, seed 0",
            "size": [IMAGE_SIZE, IMAGE_SIZE],
            "cpu": pinning,
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "results": results,
            "niqe_plus_piqe_median_ms": niqe_plus_piqe,
        }
        atomic_write_bytes(args.json, (json.dumps(report, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
