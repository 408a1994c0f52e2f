"""``ssp-net segmenter train``: train the CS-Net fibre segmenter used by ``ssp-net evaluate``.

With ``--images`` and ``--labels`` (binary fibre masks matched by file name) it trains on them,
ideally high-quality images as in the paper; without them on synthetic HQ fibre images and their
exact masks. Writes ``SEG_DIR/segmenter.keras`` (atomically) and ``SEG_DIR/segmenter.json``.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import FINITE_POSITIVE, POSITIVE_INT, SEED
    from ssp_keras.defaults import CHANNEL_COUNTS  # no TensorFlow

    # Defaults are left to train_segmenter (None here): importing its module would load Keras and
    # TensorFlow for every ssp-net command, since main builds all parsers.
    parser = subparsers.add_parser(
        "segmenter",
        help="train the CS-Net fibre segmenter for Table 2",
        description="The CS-Net fibre segmenter that `ssp-net evaluate --segmenter` uses.",
    )
    actions = parser.add_subparsers(dest="segmenter_command", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help="train a segmenter",
        description="Train CS-Net (MSE + Dice loss, Adam, random crops, flips and rotations) on images and "
        "fibre masks matched by file name, or on synthetic fibre images when no folders are given. "
        "Unset options take the defaults of ssp_keras.segmentation (CS-Net's network; 4 epochs "
        "of 50 steps of 4 crops of 128 pixels); segmenter.json records the values used.",
    )
    train.add_argument("--images", metavar="DIR", help="training images (high quality, as in the paper)")
    train.add_argument("--labels", metavar="DIR", help="fibre masks with the images' names (nonzero = fibre)")
    train.add_argument("--out", required=True, metavar="SEG_DIR", help="folder for segmenter.keras (created)")
    train.add_argument("--epochs", type=POSITIVE_INT, help="number of epochs")
    train.add_argument("--steps-per-epoch", type=POSITIVE_INT, help="optimiser steps per epoch")
    train.add_argument("--image-size", type=POSITIVE_INT, metavar="PX",
                       help="side of the random training crops, a multiple of 2**depth")
    train.add_argument("--batch-size", type=POSITIVE_INT, help="crops per step")
    train.add_argument("--learning-rate", type=FINITE_POSITIVE, help="Adam's learning rate")
    train.add_argument("--channels", type=int, choices=CHANNEL_COUNTS, help="1 = grayscale (default), 3 = RGB")
    train.add_argument("--base-width", type=POSITIVE_INT, help="width of the first encoder block (CS-Net: 32)")
    train.add_argument("--depth", type=POSITIVE_INT, help="number of 2x2 poolings (CS-Net: 4)")
    train.add_argument("--seed", type=SEED, help="random seed (weights, crops, synthetic images)")
    train.add_argument("--verbose-fit", type=int, choices=[0, 1, 2], default=2,
                       help="Keras progress output: 0 none, 1 bar, 2 a line per epoch (default)")
    train.set_defaults(run=run_train)
    return parser


_TRAINING_OPTIONS = (
    "epochs", "steps_per_epoch", "image_size", "batch_size", "learning_rate", "channels", "base_width", "depth", "seed",
)


def run_train(args: argparse.Namespace) -> int:
    from ssp_keras.cli.options import require_output_folder, require_paths

    # Before TensorFlow loads (seconds), with the messages train_segmenter would give.
    require_paths([path for path in (args.images, args.labels) if path], "folder not found: '{}'")
    require_output_folder(args.out)
    from ssp_keras.segmentation import train_segmenter

    options = {name: getattr(args, name) for name in _TRAINING_OPTIONS if getattr(args, name) is not None}
    result = train_segmenter(args.images, args.labels, args.out, verbose=args.verbose_fit, **options)
    source = "synthetic fibre images" if result.data["source"] == "synthetic" else f"{result.data['count']} labelled images"
    print(f"Segmenter trained on {source} in {result.seconds:.0f} s, saved to {result.path}")
    return 0
