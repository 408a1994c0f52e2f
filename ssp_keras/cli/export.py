"""``ssp-net export``: write a generator as a versioned SavedModel for TensorFlow Serving."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.serving.export import DEFAULT_MODEL_NAME

    parser = subparsers.add_parser(
        "export",
        help="export a SavedModel for TensorFlow Serving",
        description="Write BASE_DIR/NAME/VERSION/ (TensorFlow Serving's layout) atomically, with the "
        "signatures serving_default (uint8 images), enhance_float (float32 in [0, 1]) and enhance_png "
        "(encoded image bytes). Existing versions are never overwritten.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a run folder holding generator.keras, a .keras file, or a pretrained name")
    parser.add_argument("--base", required=True, metavar="BASE_DIR",
                        help="the folder TensorFlow Serving's --model_base_path points above")
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help=f"model name (default {DEFAULT_MODEL_NAME})")
    parser.add_argument("--version", type=int, default=None,
                        help="integer version (default: one more than the largest present, or 1)")
    parser.add_argument("--no-warmup", action="store_true",
                        help="do not write assets.extra/tf_serving_warmup_requests")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ssp_keras.inference import load_generator
    from ssp_keras.serving.export import SIGNATURE_FLOAT, SIGNATURE_PNG, SIGNATURE_UINT8, export_saved_model

    generator = load_generator(args.model)
    result = export_saved_model(generator, args.base, name=args.name, version=args.version,
                                warmup=not args.no_warmup)
    print(f"Exported {args.model} as model '{result.name}' version {result.version} to {result.path}")
    print(f"Signatures: {SIGNATURE_UINT8}, {SIGNATURE_FLOAT}, {SIGNATURE_PNG} "
          f"(inspect with: saved_model_cli show --dir {result.path} --all)")
    return 0
