"""``ssp-net predict``: enhance files through a running TensorFlow Serving model (gRPC or REST)."""

from __future__ import annotations

import argparse

from ssp_keras.cli.enhance import EXIT_SOME_SKIPPED


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import (
        FINITE_NON_NEGATIVE,
        FINITE_POSITIVE,
        MESSAGE_MEGABYTES,
        NON_NEGATIVE_INT,
        POSITIVE_INT,
        SERVER_ADDRESS,
    )
    from ssp_keras.serving.client import DEFAULT_BACKOFF, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_RETRIES, DEFAULT_TIMEOUT
    from ssp_keras.serving.export import DEFAULT_MODEL_NAME, SIGNATURE_FLOAT, SIGNATURE_PNG, SIGNATURE_UINT8

    parser = subparsers.add_parser(
        "predict",
        help="enhance images through a TensorFlow Serving model server",
        description="Send images to tensorflow_model_server (gRPC by default, REST with --rest) and write "
        "the enhanced images under OUT_DIR, keeping names (and, as ssp-net enhance, sample types, frames and "
        "alpha). Every answer is checked (shape, type, channels) before it is written. Images over about 4 "
        "megapixels are sent in tiles normalised with the whole image's statistics, as ssp-net enhance does. "
        "Exit status: 0 done; 1 a server error or a wrong answer, or an output that could not be written "
        "part-way (one line says which); 2 bad input or options, an --out that cannot be written or is in "
        "use, nothing sent; 3 some inputs were unreadable and skipped (named).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (recursive)")
    parser.add_argument("--server", required=True, metavar="HOST:PORT", type=SERVER_ADDRESS,
                        help="model server address (TF Serving: gRPC port 8500, REST port 8501)")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the enhanced images")
    parser.add_argument("--rest", action="store_true", help="use the REST API instead of gRPC")
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME, help=f"served model name (default {DEFAULT_MODEL_NAME})")
    parser.add_argument("--version", type=POSITIVE_INT, default=None, help="model version (default: the latest)")
    parser.add_argument("--signature", default=SIGNATURE_UINT8,
                        choices=[SIGNATURE_UINT8, SIGNATURE_FLOAT, SIGNATURE_PNG],
                        help="signature to call (default serving_default: 8-bit results; enhance_float and "
                        "enhance_png keep 16-bit precision)")
    parser.add_argument("--channels", type=int, choices=[1, 3], default=None,
                        help="the model's channels (default: asked from the server's model metadata)")
    parser.add_argument("--timeout", type=FINITE_POSITIVE, default=DEFAULT_TIMEOUT, help="seconds per request (> 0)")
    parser.add_argument("--retries", type=NON_NEGATIVE_INT, default=DEFAULT_RETRIES,
                        help="retries while the server is unavailable, with exponential backoff")
    parser.add_argument("--backoff", type=FINITE_NON_NEGATIVE, default=DEFAULT_BACKOFF,
                        help="first retry delay in seconds")
    parser.add_argument("--max-message-mb", type=MESSAGE_MEGABYTES, default=DEFAULT_MAX_MESSAGE_BYTES / 2**20,
                        help="largest request in MiB; larger images are sent as blended tiles (a limit that cannot hold "
                             "a 2048x2048 float32 copy of an image makes their tone differ from ssp-net enhance's: "
                             "a warning says so)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-file progress lines")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ssp_keras.inference.outputs import plan_outputs
    from ssp_keras.serving.client import PredictionClient, predict_files
    from ssp_keras.utils.locks import claim_folder

    # Inputs and a writable --out that no other process uses, before the server is called.
    plan_outputs(args.inputs, args.out, overwrite=True)  # (predict replaces earlier outputs)
    with claim_folder(args.out, "ssp-net predict"), PredictionClient(
        args.server,
        model=args.model,
        signature=args.signature,
        rest=args.rest,
        version=args.version,
        channels=args.channels,
        timeout=args.timeout,
        retries=args.retries,
        backoff=args.backoff,
        max_message_bytes=int(args.max_message_mb * 2**20),
    ) as client:
        result = predict_files(client, args.inputs, args.out, progress=None if args.quiet else print)
    print(f"Enhanced {len(result.written)} image(s) into {args.out} via {client.protocol} {args.server} "
          f"(model '{args.model}', signature '{args.signature}') in {result.seconds:.1f} s"
          + (f"; skipped {len(result.skipped)} unreadable file(s) (named above; exit status "
             f"{EXIT_SOME_SKIPPED})" if result.skipped else ""))
    return EXIT_SOME_SKIPPED if result.skipped else 0
