"""Serving speed: the exported SavedModel called directly, and round trips through a server.

Exports a generator of the chosen preset (random weights) to a temporary base folder, then
measures:

* ``serving_default`` called directly on the loaded SavedModel: latency of one 384x384 uint8
  image, and throughput of a batch of ``--batch`` such images;
* ``enhance_png`` called directly (PNG decode and encode included);
* round trips through the in-process stand-in for ``tensorflow_model_server``
  (`ssp_keras.serving.testing`) with the project's client: gRPC ``serving_default`` (the median of
  ``--repeats``, 20 by default) and REST (``serving_default`` as JSON, and ``enhance_png`` as b64).

Client and server share this process (and its two cores), as in the tests; against a real
``tensorflow_model_server`` the server side runs in C++ instead.

Run by hand::

    python benchmarks/serving.py [--preset lite|paper] [--repeats 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import common

common.reexec_with_tcmalloc_if_asked()  # before TensorFlow loads

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY)

from inference import make_generator  # noqa: E402  (benchmarks/inference.py)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("lite", "paper"), default="lite")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--side", type=int, default=384, help="image side (default 384)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per case (median reported)")
    parser.add_argument("--batch", type=int, default=8, help="images per call in the throughput case")
    common.add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        return common.dry_run(args, f"the {args.preset} generator's SavedModel behind the in-process server: "
                                    f"{args.side}^2 images, {args.repeats} calls per case, batches of {args.batch}")
    common.apply_common_arguments(args)
    print(common.cpu_line(), flush=True)

    import numpy as np
    import tensorflow as tf

    from ssp_keras.serving.client import PredictionClient, encode_png
    from ssp_keras.serving.export import export_saved_model
    from ssp_keras.serving.testing import InProcessModelServer

    side, channels = args.side, args.channels
    rng = np.random.default_rng(0)
    image = rng.random((side, side, channels), dtype=np.float32)
    image_uint8 = np.uint8(np.round(image * 255))
    rows = []

    def add(case, seconds, images=1):
        rows.append({"case": case, "seconds": seconds, "images_per_s": images / seconds})

    with tempfile.TemporaryDirectory() as base:
        started = time.perf_counter()
        export = export_saved_model(make_generator(args.preset, channels), base, name="ssp_net")
        export_seconds = time.perf_counter() - started
        loaded = tf.saved_model.load(export.path)
        serving_default = loaded.signatures["serving_default"]
        enhance_png = loaded.signatures["enhance_png"]

        one = tf.constant(image_uint8[None])
        batch = tf.constant(np.repeat(image_uint8[None], args.batch, axis=0))
        png = tf.constant([encode_png(image)])
        add(f"SavedModel serving_default, 1 x {side}x{side}",
            common.timed(lambda: serving_default(images=one), args.repeats, 2))
        add(f"SavedModel serving_default, {args.batch} x {side}x{side}",
            common.timed(lambda: serving_default(images=batch), max(3, args.repeats // 4), 1), args.batch)
        add(f"SavedModel enhance_png, 1 x {side}x{side}", common.timed(lambda: enhance_png(image_bytes=png), args.repeats, 2))

        with InProcessModelServer({"ssp_net": os.path.dirname(export.path)}) as server:
            cases = [
                ("gRPC", server.grpc_address, False, "serving_default", args.repeats),
                ("REST", server.rest_address, True, "serving_default", max(5, args.repeats // 2)),
                ("REST", server.rest_address, True, "enhance_png", args.repeats),
            ]
            for protocol, address, rest, signature, repeats in cases:
                with PredictionClient(address, signature=signature, rest=rest, channels=channels) as client:
                    seconds = common.timed(lambda: client.enhance(image), repeats, 2)
                add(f"{protocol} round trip {signature}, 1 x {side}x{side} (median of {repeats})", seconds)

    print(f"\nServing, preset {args.preset}, {channels} channel(s); export took {export_seconds:.1f} s; "
          f"load average {common.load_average():.1f}")
    common.print_table(rows, [("case", "case"), ("seconds", "seconds", "{:.4f}"),
                              ("images_per_s", "images/s", "{:.3g}")])
    if args.json:
        common.write_json(args.json, {"benchmark": "serving", "preset": args.preset,
                                      "export_seconds": export_seconds, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
