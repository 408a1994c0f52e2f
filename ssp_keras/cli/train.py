"""``ssp-net train``: train SSP-Net on two folders of unpaired images (or a CORN-style root)."""

from __future__ import annotations

import argparse
import sys

from ssp_keras.cli.options import (
    add_config_options,
    config_from_args,
    require_corn_root,
    require_model,
    require_output_folder,
    require_paths,
)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train on unpaired LQ and HQ folders",
        description="Train SSP-Net. Running the same command again on the same --out resumes after the "
        "last completed epoch (history and previews of an epoch a killed run did not checkpoint are dropped). A "
        "resume with other settings or other training images than the run's config.json records is refused, "
        "naming them (a larger --epochs extends the run). One process at a time trains in a run folder.",
        epilog="exit status: 0 trained (or already complete); 1 training stopped because a loss, weight or optimiser "
        "variable became NaN or infinite (nothing of that epoch is saved; the checkpoints on disk are finite), or an "
        "output could not be written part-way (a full disk): one line says which; 2 bad input, settings or data "
        "that differ from the run's, an --out that cannot be written or is in use: nothing written; 130 interrupted.",
    )
    data = parser.add_argument_group("data (either --lq and --hq, or --data)")
    data.add_argument("--lq", nargs="+", metavar="PATH", help="low-quality images: folders and/or files")
    data.add_argument("--hq", nargs="+", metavar="PATH", help="high-quality images: folders and/or files")
    data.add_argument("--data", metavar="ROOT", help="CORN-style root with trainA/ (LQ) and trainB/ (HQ)")
    data.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                      help="leave out files whose name matches this glob (e.g. held-out test frames); repeatable")
    data.add_argument("--preview-lq", nargs="+", metavar="PATH",
                      help="LQ images whose whole frames the previews show each epoch (default: the first LQ images)")
    data.add_argument("--preview-hq", nargs="+", metavar="PATH",
                      help="HQ images for the previews (default: the first HQ images)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory (created; resumed if it exists)")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="fine-tune: start the generator from a run folder, .keras file or pretrained name")
    parser.add_argument("--verbose-fit", type=int, choices=[0, 1, 2], default=None,
                        help="Keras progress output: 1 = bar, 2 = one line per epoch (default: 1 on a terminal, "
                             "2 when the output goes to a file or pipe, so logs stay readable)")
    add_config_options(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import os

    from ssp_keras.errors import InputError

    if args.data and (args.lq or args.hq):
        raise InputError("give either --data ROOT or --lq and --hq, not both")
    if not args.data and not (args.lq and args.hq):
        raise InputError("no training data: give --lq DIR and --hq DIR, or --data ROOT")
    # What can be checked without TensorFlow is checked before it loads (seconds).
    require_corn_root(args.data)
    require_paths((args.lq or []) + (args.hq or []) + (args.preview_lq or []) + (args.preview_hq or []))
    require_output_folder(args.out)
    if args.init_from and not os.path.isdir(os.path.join(args.out, "checkpoints")):
        require_model(args.init_from)  # (ignored when the run resumes)
    config = config_from_args(args)  # a bad field too

    from ssp_keras.training.trainer import corn_folders, train

    lq, hq = corn_folders(args.data) if args.data else (args.lq, args.hq)
    if args.exclude:
        lq, hq = _without_excluded(lq, args.exclude), _without_excluded(hq, args.exclude)
    from ssp_keras.runtime import describe

    print(describe(), flush=True)
    from ssp_keras.precision import resolve_training_precision

    policy = resolve_training_precision(config.train.precision)
    how = " (auto: this CPU computes bfloat16 natively)" if config.train.precision == "auto" and policy != "float32" else ""
    print(f"Precision: {policy}{how}", flush=True)
    preview = None
    if args.preview_lq or args.preview_hq:
        preview = (args.preview_lq or lq, args.preview_hq or hq)
    result = train(config, lq, hq, args.out, verbose=_fit_verbosity(args.verbose_fit),
                   initial_generator=args.init_from, preview=preview)
    if result.generator_path:
        print(f"Generator saved to {result.generator_path}")
    if result.skipped_files:
        print(f"Skipped {len(result.skipped_files)} unreadable files (named above).")
    return 0


def _without_excluded(sources, patterns):
    """The image files of ``sources`` (files and/or folders) whose names match none of ``patterns``."""
    import fnmatch
    import os

    from ssp_keras.data.listing import expand_image_paths

    files = expand_image_paths(sources)
    kept = [path for path in files if not any(fnmatch.fnmatch(os.path.basename(path), p) for p in patterns)]
    print(f"Excluded {len(files) - len(kept)} of {len(files)} files matching {patterns}")
    return kept


def _fit_verbosity(requested):
    """Keras' bar rewrites one line with carriage returns; in a log file that is one huge line."""
    if requested is not None:
        return requested
    return 1 if sys.stdout.isatty() else 2
