"""``ssp-net export``: write a generator as a versioned SavedModel for TensorFlow Serving."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import POSITIVE_INT
    from ssp_keras.serving.export import DEFAULT_MAX_BATCH, DEFAULT_MAX_PIXELS, DEFAULT_MODEL_NAME

    parser = subparsers.add_parser(
        "export",
        help="export a SavedModel for TensorFlow Serving",
        description="Write BASE_DIR/NAME/VERSION/ (TensorFlow Serving's layout) atomically, with the "
        "signatures serving_default (uint8 images), enhance_float (float32 in [0, 1]) and enhance_png "
        "(encoded image bytes), and image_statistics / enhance_with_statistics / enhance_uint8_with_statistics that "
        "ssp-net predict uses to tile large images like ssp-net enhance (every tile normalised with the whole "
        "image's statistics). Existing versions are never "
        "overwritten; the version folder gets the permissions the umask gives (readable by a server "
        "running as another user with umask 022). One export at a time per model folder.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a run folder holding generator.keras, a .keras file, or a pretrained name")
    parser.add_argument("--base", required=True, metavar="BASE_DIR",
                        help="the folder TensorFlow Serving's --model_base_path points above")
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help=f"model name (default {DEFAULT_MODEL_NAME})")
    parser.add_argument("--version", type=POSITIVE_INT, default=None,
                        help="integer version (default: one more than the largest present, or 1)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not write assets.extra/tf_serving_warmup_requests")
    parser.add_argument("--max-pixels", type=POSITIVE_INT, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="largest image a request may hold, in pixels (H*W); larger ones are refused "
                        f"with INVALID_ARGUMENT before the network runs (default {DEFAULT_MAX_PIXELS}, "
                        "8192x8192)")
    parser.add_argument("--max-batch", type=POSITIVE_INT, default=DEFAULT_MAX_BATCH, metavar="N",
                        help=f"most images one request may hold (default {DEFAULT_MAX_BATCH})")
    parser.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                        help="savedmodel (default, for TensorFlow Serving) or onnx: BASE_DIR/NAME/VERSION/model.onnx "
                        "(float32 images in [0, 1], any size; needs pip install \"ssp-keras[onnx]\")")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import os

    from ssp_keras.runtime import select_keras_backend

    # SavedModel and ONNX are written from TensorFlow graphs, whatever backend trained the generator
    # (a .keras file is backend-neutral) and whatever $KERAS_BACKEND says.
    select_keras_backend("tensorflow")

    from ssp_keras.cli.options import require_model
    from ssp_keras.serving.export import check_model_name, resolve_version_path
    from ssp_keras.utils.locks import claim_folder

    # Before the model loads: the name, the version, the model and a writable, unclaimed folder.
    check_model_name(args.name)
    resolve_version_path(args.base, args.name, args.version)
    require_model(args.model)
    if args.format == "onnx":
        from ssp_keras.serving.onnx_export import require_onnx_tools

        require_onnx_tools()  # one clear line before anything is created when the extra is missing
    with claim_folder(os.path.join(args.base, args.name), f"ssp-net export --format {args.format}", "--base/--name",
                      report=lambda path: print(f"Removed {path}, left by an export that was killed")):
        return run_onnx(args) if args.format == "onnx" else run_saved_model(args)


def run_saved_model(args: argparse.Namespace) -> int:
    from ssp_keras.inference import load_generator
    from ssp_keras.serving.export import SIGNATURES, check_limits, export_saved_model

    check_limits(args.max_pixels, args.max_batch)  # before the model loads
    generator = load_generator(args.model)
    result = export_saved_model(generator, args.base, name=args.name, version=args.version,
                                warmup=not args.no_warmup, max_pixels=args.max_pixels, max_batch=args.max_batch)
    print(f"Exported {args.model} as model '{result.name}' version {result.version} to {result.path}")
    print(f"Limits: at most {result.max_batch} image(s) per request, {result.max_pixels} pixels per image "
          "(assets.extra/ssp_net_limits.json)")
    print(f"Signatures: {', '.join(SIGNATURES)} (inspect with: saved_model_cli show --dir {result.path} --all)")
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    from ssp_keras.serving.onnx_export import export_onnx

    result = export_onnx(args.model, args.base, name=args.name, version=args.version)
    print(f"Exported {args.model} as ONNX model '{result.name}' version {result.version} to {result.path} "
          f"(opset {result.opset}; onnxruntime matches Keras to {result.max_abs_difference:.2g})")
    return 0
