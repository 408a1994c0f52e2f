"""Inference speed and memory: ``enhance_array`` latency, folder throughput, huge-image peak RSS.

Measures, for a generator of the chosen preset (random weights: speed does not depend on them), or
for a saved one with ``--model`` (the bundled ``ccmid-lite`` is wider than the ``lite`` preset in its
last decoder stage):

* latency of one 384x384 and one 1024x1024 image through ``enhance_array`` (median after warm-up);
* folder throughput of ``enhance_files`` on N 384x384 8-bit PNGs (images per second, reading and
  writing included);
* with ``--precision float32,bfloat16``: the latencies again for each precision, timed in
  interleaved rounds, their ratio, and how far the bfloat16 output is from float32's on the bundled
  held-out frames (grey levels); the CPU flags are printed (bfloat16 only pays on native
  ``avx512_bf16``/``amx_bf16``);
* peak resident memory (``VmHWM``, the kernel's high-water mark) of ``enhance_files`` on one
  8000x8000 16-bit TIFF, tiled automatically, in a fresh child process, next to the same child's
  peak before the enhancement (TensorFlow and the model loaded).

Run by hand::

    python benchmarks/inference.py [--preset lite|paper | --model ccmid-lite] [--huge-side 8000] [--skip-huge] [--json PATH]
    python benchmarks/inference.py --preset paper --precision float32,bfloat16 --skip-huge --skip-folder
    python benchmarks/inference.py --backend jax ...        # the same on the JAX backend

``--backend tensorflow|jax`` (default: $KERAS_BACKEND, else tensorflow) picks the Keras backend of
the process (and of the huge-image child); run it once per backend to compare them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import common

common.reexec_with_tcmalloc_if_asked()  # before TensorFlow loads
common.apply_backend_flag()  # before Keras loads

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("lite", "paper"), default="lite")
    parser.add_argument("--model", metavar="NAME_OR_PATH",
                        help="time this saved generator (run folder, .keras file or pretrained name) instead of "
                        "a fresh generator of --preset")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of the 384x384 latency")
    parser.add_argument("--folder-images", type=int, default=16, help="images in the throughput folder")
    parser.add_argument("--huge-side", type=int, default=8000, help="side of the tiled peak-memory image")
    parser.add_argument("--skip-huge", action="store_true", help="skip the huge-image peak memory run")
    parser.add_argument("--skip-folder", action="store_true", help="skip the folder throughput run")
    parser.add_argument("--precision", type=lambda text: text.split(","), default=None, metavar="P,P",
                        help="compare inference precisions (float32,bfloat16), interleaved")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds for --precision")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=common.keras_backend(),
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--child-huge", nargs=2, metavar=("IMAGE", "OUT"), help=argparse.SUPPRESS)
    common.add_common_arguments(parser)
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark in MiB.

    ``VmHWM`` from /proc/self/status where there is one: ``ru_maxrss`` survives fork and exec on
    Linux, so a child started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_generator(args):
    """The generator to time: ``--model`` loaded, else a fresh one of ``--preset`` and ``--channels``."""
    if args.model:
        from ssp_keras.inference.loading import load_generator

        return load_generator(args.model)
    from ssp_keras.config import preset
    from ssp_keras.networks import build_generator

    config = preset(args.preset).replace(**{"data.channels": args.channels})
    return build_generator(config)


def _generator_name(args) -> str:
    return f"model {args.model}" if args.model else f"preset {args.preset}"


def latency_cases(channels: int, repeats: int):
    """``(side, timed runs, random image)`` for the 384x384 and 1024x1024 latency cases."""
    import numpy as np

    rng = np.random.default_rng(0)
    for side, runs in ((384, repeats), (1024, max(3, repeats // 3))):
        yield side, runs, rng.random((side, side, channels), dtype=np.float32)


def latency_rows(generator, channels: int, repeats: int) -> list:
    from ssp_keras.inference import enhance_array

    rows = []
    for side, runs, image in latency_cases(channels, repeats):
        seconds = common.timed(lambda: enhance_array(generator, image), runs, warmup=2)
        rows.append({"case": f"enhance_array {side}x{side}", "seconds": seconds,
                     "rate": side * side / seconds / 1e6, "unit": "Mpx/s"})
    return rows


def precision_rows(generator, precisions, channels: int, repeats: int, rounds: int) -> list:
    """Latency per precision (interleaved rounds), the speed-up over the first, and output error."""
    import glob

    import numpy as np

    from ssp_keras.data.reading import read_image
    from ssp_keras.inference import enhance_array
    from ssp_keras.inference.loading import with_precision

    models = {name: with_precision(generator, name) for name in precisions}
    rows = []
    for side, runs, image in latency_cases(channels, repeats):
        for model in models.values():
            common.timed(lambda model=model: enhance_array(model, image), 0, warmup=2)
        seconds = {name: [] for name in models}
        for round_index in range(rounds):
            order = list(models.items()) if round_index % 2 == 0 else list(models.items())[::-1]
            for name, model in order:
                seconds[name].append(common.timed(lambda model=model: enhance_array(model, image), runs, warmup=0))
        reference = common.median(seconds[precisions[0]])
        for name in models:
            median = common.median(seconds[name])
            rows.append({"case": f"enhance_array {side}x{side} {name}", "seconds": median,
                         "rate": side * side / median / 1e6, "unit": "Mpx/s", "speedup": reference / median})
    # Error: on the trained bundled model (a fresh generator's zero-initialised output layer
    # would hide every difference) and its held-out real frames.
    frames = sorted(glob.glob(os.path.join(REPOSITORY, "data", "ccmid", "testA", "*.jpg")))
    if frames and channels == 1:
        from ssp_keras.inference.loading import load_generator

        trained = {name: load_generator("ccmid-lite", name) for name in precisions}
        errors = {name: [] for name in precisions[1:]}
        for frame in frames:
            image = read_image(frame, channels)
            reference = enhance_array(trained[precisions[0]], image).astype(np.float64)
            for name in errors:
                errors[name].append((np.abs(enhance_array(trained[name], image) - reference) * 255).ravel())
        for name, parts in errors.items():
            error = np.concatenate(parts)
            rows.append({"case": f"ccmid-lite {name} vs {precisions[0]}, {len(frames)} real frames: |difference|",
                         "seconds": None, "rate": float(error.mean()), "unit": "grey levels mean",
                         "p99": float(np.percentile(error, 99)), "max": float(error.max())})
    return rows


def folder_row(generator, channels: int, count: int) -> dict:
    import numpy as np

    from ssp_keras.data.writing import write_image
    from ssp_keras.inference import enhance_array, enhance_files

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        inputs = os.path.join(folder, "in")
        for index in range(count):
            write_image(os.path.join(inputs, f"{index:03d}.png"), rng.random((384, 384, channels)), bit_depth=8)
        enhance_array(generator, rng.random((384, 384, channels), dtype=np.float32))  # warm-up trace
        started = time.perf_counter()
        enhance_files(generator, [inputs], os.path.join(folder, "out"))
        seconds = time.perf_counter() - started
    return {"case": f"enhance_files {count} x 384x384 PNG", "seconds": seconds, "rate": count / seconds,
            "unit": "images/s"}


def huge_row(args) -> dict:
    """Writes the huge TIFF here, enhances it in a fresh child, and reads back the child's peaks."""
    import numpy as np

    from ssp_keras.data.writing import write_image

    side = args.huge_side
    with tempfile.TemporaryDirectory() as folder:
        image_path = os.path.join(folder, "in", "huge.tif")
        # Smooth structure plus noise, built row band by row band to keep this parent small.
        image = np.empty((side, side, args.channels), dtype=np.float32)
        columns = np.linspace(0, 8 * np.pi, side, dtype=np.float32)
        rng = np.random.default_rng(2)
        for top in range(0, side, 1000):
            rows = np.linspace(top, top + 999, min(1000, side - top), dtype=np.float32)[:, None] / side * 6
            band = 0.5 + 0.3 * np.sin(columns[None, :] + rows) + 0.1 * rng.standard_normal((len(rows), side))
            image[top:top + len(rows)] = np.clip(band, 0, 1)[:, :, None]
        write_image(image_path, image, bit_depth=16)
        del image
        out = os.path.join(folder, "out")
        command = [sys.executable, os.path.abspath(__file__), "--preset", args.preset, "--channels",
                   str(args.channels), "--child-huge", image_path, out] + (["--model", args.model] if args.model else [])
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise SystemExit(f"huge-image child failed:\n{completed.stderr[-3000:]}")
        child = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"case": f"enhance_files {side}x{side} 16-bit TIFF (tiled)", "seconds": child["seconds"],
            "rate": side * side / child["seconds"] / 1e6, "unit": "Mpx/s",
            "peak_rss_mb": child["peak_rss_mb"], "baseline_rss_mb": child["baseline_rss_mb"]}


def child_huge(args) -> None:
    """In the child: load TF and the model, note the peak, enhance the file, note the peak again."""
    from ssp_keras.inference import enhance_files

    generator = make_generator(args)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    enhance_files(generator, [args.child_huge[0]], args.child_huge[1])
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline}))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_huge:
        child_huge(args)
        return 0
    if args.dry_run:
        parts = [f"precisions {', '.join(args.precision)} interleaved, {args.rounds} rounds" if args.precision
                 else f"384x384 latency, {args.repeats} runs"]
        parts += [] if args.skip_folder else [f"a folder of {args.folder_images} images"]
        parts += [] if args.skip_huge else [f"peak memory of a tiled {args.huge_side}^2 image"]
        return common.dry_run(args, f"the {_generator_name(args)} generator on {args.backend}: " + "; ".join(parts))
    common.apply_common_arguments(args)
    print(common.cpu_line(), flush=True)
    generator = make_generator(args)
    if args.precision:
        rows = precision_rows(generator, args.precision, args.channels, args.repeats, args.rounds)
    else:
        rows = latency_rows(generator, args.channels, args.repeats)
    if not args.skip_folder:
        rows.append(folder_row(generator, args.channels, args.folder_images))
    if not args.skip_huge:
        rows.append(huge_row(args))
    print(f"\nInference, backend {args.backend}, {_generator_name(args)}, {args.channels} channel(s), "
          f"load average {common.load_average():.1f}")
    common.print_table(rows, [
        ("case", "case"),
        ("seconds", "seconds", "{:.3f}"),
        ("rate", "rate", "{:.3g}"),
        ("unit", "unit"),
        ("speedup", "speed-up", "{:.2f}x"),
        ("p99", "p99", "{:.2f}"),
        ("max", "max", "{:.2f}"),
        ("peak_rss_mb", "peak RSS MiB", "{:.0f}"),
        ("baseline_rss_mb", "RSS before MiB", "{:.0f}"),
    ])
    if args.json:
        common.write_json(args.json, {"benchmark": "inference", "backend": args.backend, "preset": args.preset,
                                      "model": args.model, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
