"""``ssp-net enhance``: enhance image files and folders of any size with a trained generator."""

from __future__ import annotations

import argparse
import os
import sys

from ssp_keras.cli.options import add_backend_option, select_backend
from ssp_keras.inference.loading import INFERENCE_PRECISIONS

#: Exit status when some inputs were unreadable and skipped (the readable ones were written).
EXIT_SOME_SKIPPED = 3

EPILOG = """\
exit status:
  0  every input was enhanced and written
  1  an output could not be written part-way (a full disk): one line names it and what was
     written before; none is half-written. Or an unexpected failure (a traceback says where)
  2  bad input, nothing written: a missing input or model, an --out that is an input folder,
     cannot be created or written, or is in use by another ssp-net process, an output that would
     replace an input, or existing outputs without --overwrite
  3  some inputs were unreadable and skipped (each is named on stderr, with a count);
     the outputs of the readable files were written
  130 interrupted (Ctrl-C); files already written stay, none is half-written

Samples keep their type and range: 8-bit in, 8-bit out; 16-bit PNG/TIFF in, 16-bit out; other
TIFF sample types (12-bit in 16, int32, float32, float64) come back in their own type and range.
Formats that cannot hold a type get 16 bits (PNG) or 8 bits (JPEG, BMP).
Stacks: every page of a multi-page TIFF and every frame of a multi-frame DICOM is enhanced and
written back (same page/frame count). DICOM inputs give derived DICOMs (same patient and study, a
new series "SSP-Net enhanced (MODEL)") at the source's stored bit depth; --dicom-as png writes PNG
instead (one NAME_frameNNN.png per frame of a multi-frame file).
Orientation: an EXIF/TIFF orientation tag is applied, so outputs look as the inputs are shown.
Colour: images are enhanced with the model's channels. A gray model enhances the BT.601 luma of
colour files (RGB, palette, CMYK) and writes gray; an RGB model converts CMYK to RGB. Each such
file is named in a warning. An alpha channel is passed through unchanged, not enhanced.
Size: any size is read (no decompression-bomb limit on the files you name; an image larger than
the memory available is refused with a reason); images over about 4 megapixels are enhanced in
tiles, normalised with the whole image's statistics.
"""


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import NON_NEGATIVE_INT
    from ssp_keras.inference.outputs import DICOM_OUTPUT_FORMATS

    parser = subparsers.add_parser(
        "enhance",
        help="enhance image files or folders (any size, sample type, frames and alpha kept)",
        description="Enhance images with a trained generator. Names and sub-folders are kept; samples keep "
        "their type and range (8/16-bit, float TIFF as float), DICOM gives DICOM at its own bit depth. Any "
        "size works (reflect-padded to a multiple of 32, cropped back); very large images are processed in "
        "blended tiles. Inputs are never overwritten: --out may not be, or lie inside, an input folder, and "
        "no output may be an input file; existing outputs are refused unless --overwrite. One ssp-net "
        "process at a time writes into an --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (recursive)")
    parser.add_argument("--model", required=True, metavar="MODEL",
                        help="a run folder holding generator.keras, a .keras file, or a pretrained name")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the enhanced images")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace output files that exist already in OUT_DIR (never an input)")
    parser.add_argument("--dicom-as", choices=DICOM_OUTPUT_FORMATS, default="dicom",
                        help="what DICOM inputs become: a derived DICOM (default) or PNG")
    parser.add_argument("--tile-size", type=NON_NEGATIVE_INT, default=None, metavar="PIXELS",
                        help="process in square tiles of this side (default: automatic above about 4 "
                        "megapixels, tiles of 1024; 0 = never tile)")
    parser.add_argument("--overlap", type=NON_NEGATIVE_INT, default=None, metavar="PIXELS",
                        help="pixels shared by neighbouring tiles, blended (default 64)")
    parser.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                        help="compute precision: auto = bfloat16 on a CPU with native bfloat16 (avx512_bf16 / "
                             "amx_bf16; 1.2-1.7x faster, within ~1 grey level of float32), float32 elsewhere")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-file progress lines")
    add_backend_option(parser, "enhance")
    parser.set_defaults(run=run)
    return parser


def model_label(source: str) -> str:
    """A short name for ``--model`` in DICOM series descriptions: a pretrained name, the run
    folder's name, or the ``.keras`` file's name (with its folder when it is ``generator.keras``)."""
    path = os.path.normpath(source)
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path))
    if os.path.isfile(path):
        name = os.path.basename(path)
        folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
        return f"{folder}/{name}" if name == "generator.keras" and folder else name
    return source


def run(args: argparse.Namespace) -> int:
    from ssp_keras.cli.options import require_model
    from ssp_keras.errors import InputError
    from ssp_keras.inference import DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE
    from ssp_keras.inference.outputs import plan_outputs
    from ssp_keras.utils.locks import claim_folder

    overlap = DEFAULT_TILE_OVERLAP if args.overlap is None else args.overlap
    if overlap < 0 or overlap >= (args.tile_size or DEFAULT_TILE_SIZE):
        raise InputError(f"--overlap must be >= 0 and smaller than --tile-size, got {overlap}")
    # Inputs, --out (writable, not in use) and existing outputs are checked before the model is loaded.
    plan_outputs(args.inputs, args.out, dicom_as=args.dicom_as, overwrite=args.overwrite)
    require_model(args.model)
    select_backend(args.backend)
    with claim_folder(args.out, "ssp-net enhance"):
        return _enhance(args, overlap)


def _enhance(args: argparse.Namespace, overlap: int) -> int:
    from ssp_keras.inference import enhance_files, load_generator

    generator = load_generator(args.model, precision=args.precision)
    if args.precision == "auto" and generator.dtype_policy.name == "bfloat16" and not args.quiet:
        print("Computing in bfloat16 (native on this CPU); --precision float32 for float32 results")
    if args.precision == "bfloat16":
        from ssp_keras.precision import EMULATED_BFLOAT16
        from ssp_keras.runtime import native_bfloat16

        if not native_bfloat16():
            print(f"ssp-net enhance: warning: {EMULATED_BFLOAT16}", file=sys.stderr)
    result = enhance_files(
        generator,
        args.inputs,
        args.out,
        tile_size=args.tile_size,
        overlap=overlap,
        progress=None if args.quiet else print,
        dicom_as=args.dicom_as,
        overwrite=args.overwrite,
        model_name=model_label(args.model),
        model_source=args.model,
    )
    images = len(result.written) if result.frames <= len(result.written) else None
    summary = (
        f"Enhanced {len(result.written)} image(s)" if images is not None
        else f"Enhanced {result.frames} frame(s) in {len(result.written)} file(s)"
    )
    print(f"{summary} into {args.out} in {result.seconds:.1f} s"
          + (f"; skipped {len(result.skipped)} unreadable file(s) (named above; exit status "
             f"{EXIT_SOME_SKIPPED})" if result.skipped else ""))
    return EXIT_SOME_SKIPPED if result.skipped else 0
