"""``ssp-net enhance``: enhance image files and folders of any size with a trained generator."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "enhance",
        help="enhance image files or folders (any size, bit depth kept)",
        description="Enhance images with a trained generator. Names and sub-folders are kept; 16-bit "
        "PNG/TIFF (and DICOM, as PNG) give 16-bit outputs. Any size works (reflect-padded to a "
        "multiple of 32, cropped back); very large images are processed in blended tiles. Inputs are "
        "never overwritten: --out may not be, or lie inside, an input folder.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (recursive)")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a run folder holding generator.keras, a .keras file, or a pretrained name")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the enhanced images")
    parser.add_argument("--tile-size", type=int, default=None, metavar="PIXELS",
                        help="process in square tiles of this side (default: automatic above about 4 "
                        "megapixels, tiles of 1024; 0 = never tile)")
    parser.add_argument("--overlap", type=int, default=None, metavar="PIXELS",
                        help="pixels shared by neighbouring tiles, blended (default 64)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-file progress lines")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ssp_keras.errors import InputError
    from ssp_keras.inference import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, enhance_files, load_generator

    if args.tile_size is not None and args.tile_size < 0:
        raise InputError(f"--tile-size must be >= 0, got {args.tile_size}")
    overlap = DEFAULT_TILE_OVERLAP if args.overlap is None else args.overlap
    if overlap < 0 or overlap >= (args.tile_size or DEFAULT_TILE_SIZE):
        raise InputError(f"--overlap must be >= 0 and smaller than --tile-size, got {overlap}")
    generator = load_generator(args.model)
    result = enhance_files(
        generator,
        args.inputs,
        args.out,
        tile_size=args.tile_size,
        overlap=overlap,
        progress=None if args.quiet else print,
    )
    print(f"Enhanced {len(result.written)} image(s) into {args.out} in {result.seconds:.1f} s"
          + (f"; skipped {len(result.skipped)} unreadable file(s) (named above)" if result.skipped else ""))
    return 0
