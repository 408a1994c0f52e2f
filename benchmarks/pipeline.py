"""Throughput of the training input pipeline (`make_unpaired_dataset`), cache on and off.

Run by hand:

    python benchmarks/pipeline.py [--lq DIR --hq DIR] [--batches 50] [--json results.json] [--tcmalloc]

Without ``--lq``/``--hq``, 64 synthetic 384x384 images per domain are generated into a temporary
folder (8-bit PNG, as the bundled sample set). For each setting the dataset is built, iterated
through a warm-up of one full pass over the larger folder plus a few batches (so the cache is
filled and the prefetch buffers are primed), then timed over ``--batches`` batches. The table gives
images per second counting LQ and HQ images (``2 * batch * batches / seconds``) and the time to
the first batch (the decode-everything cost of a cold cache shows there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time

import common

common.reexec_with_tcmalloc_if_asked()  # before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(lq_files, hq_files, config, batch_size: int, batches: int, augment: bool) -> dict:
    """Builds one dataset (``config``: a `DataConfig`) and times it. Returns the row of the table as a dict."""
    import tensorflow as tf

    from ssp_keras.data.pipeline import make_unpaired_dataset

    started = time.perf_counter()
    dataset = make_unpaired_dataset(lq_files, hq_files, config, batch_size=batch_size, seed=0, augment=augment)
    iterator = iter(dataset)
    next(iterator)
    first_batch_s = time.perf_counter() - started
    warmup = math.ceil(max(len(lq_files), len(hq_files)) / batch_size) + 3
    for _ in range(warmup):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        lq, hq = next(iterator)
    # the last batch's values must exist before the clock stops
    float(tf.reduce_sum(lq)) + float(tf.reduce_sum(hq))
    seconds = time.perf_counter() - started
    return {
        "cache": bool(config.cache),
        "augment": augment,
        "first_batch_s": round(first_batch_s, 3),
        "images_per_s": round(2 * batch_size * batches / seconds, 1),
        "batches": batches,
        "batch_size": batch_size,
        "image_size": config.image_size,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lq", help="folder of LQ images (default: synthetic)")
    parser.add_argument("--hq", help="folder of HQ images (default: synthetic)")
    parser.add_argument("--count", type=int, default=64, help="synthetic images per domain")
    parser.add_argument("--source-size", type=int, default=384, help="side of the synthetic images")
    parser.add_argument("--image-size", type=int, default=256, help="crop side S (multiple of 32)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--batch-size", type=int, default=4, help="images per domain per batch")
    parser.add_argument("--batches", type=int, default=50, help="timed batches per setting")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if (args.lq is None) != (args.hq is None):
        parser.error("give both --lq and --hq, or neither")
    if args.dry_run:
        return common.dry_run(args, f"make_unpaired_dataset on {args.lq or f'{args.count} synthetic images'}, "
                                    f"crops of {args.image_size}, batch {args.batch_size}, cache and augmentation "
                                    f"on/off, {args.batches} batches each")
    common.apply_common_arguments(args)
    import tensorflow as tf

    from ssp_keras.config import DataConfig
    from ssp_keras.data.listing import scan_images
    from ssp_keras.data.synthetic import generate_dataset
    from ssp_keras.utils.files import atomic_write_bytes


    with tempfile.TemporaryDirectory(prefix="ssp-pipeline-bench-") as scratch:
        if args.lq is None:
            generate_dataset(scratch, count=args.count, size=args.source_size, seed=0, test_count=0)
            lq_dir, hq_dir = os.path.join(scratch, "trainA"), os.path.join(scratch, "trainB")
            source = f"synthetic: {args.count} + {args.count} PNG {args.source_size}x{args.source_size}"
        else:
            lq_dir, hq_dir = args.lq, args.hq
            source = f"{lq_dir} + {hq_dir}"
        lq_files, _ = scan_images(lq_dir, args.channels)
        hq_files, _ = scan_images(hq_dir, args.channels)
        rows = []
        for cache in (True, False):
            for augment in (True, False):
                config = DataConfig(image_size=args.image_size, channels=args.channels, cache=cache)
                rows.append(measure(lq_files, hq_files, config, args.batch_size, args.batches, augment))

    print(common.cpu_line())
    print(f"input: {source} ({len(lq_files)} LQ, {len(hq_files)} HQ files)")
    print(f"crop {args.image_size}x{args.image_size}x{args.channels}, batch {args.batch_size} per domain, "
          f"{args.batches} timed batches, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"allocator {common.allocator()}")
    print(f"{'cache':>6} {'augment':>8} {'first batch (s)':>16} {'images/s (LQ+HQ)':>18}")
    for row in rows:
        print(f"{'on' if row['cache'] else 'off':>6} {'on' if row['augment'] else 'off':>8} "
              f"{row['first_batch_s']:>16.2f} {row['images_per_s']:>18.1f}")
    if args.json:
        report = {
            "benchmark": "pipeline",
            "source": source,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "tensorflow": tf.__version__,
            "allocator": common.allocator(),
            "results": rows,
        }
        atomic_write_bytes(args.json, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
