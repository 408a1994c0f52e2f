"""``ssp-net demo``: the whole job end to end on bundled (or generated) data, in minutes on a CPU.

Trains the ``lite`` preset briefly on unpaired LQ/HQ images, enhances the held-back test images,
and writes a before/after grid, the paper's metrics table against the CLAHE and DCP baselines, and
a table of the training losses::

    OUT/run/               the training run (config, checkpoints, TensorBoard logs, generator.keras)
    OUT/report/            enhanced images per method, report.md, report.json, comparison grid
    OUT/before_after.png   test images: original | SSP-Net
    OUT/losses.md          losses per epoch
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import time

from ssp_keras.cli.options import add_config_options, config_from_args

# Training budget of the demo: 2 CPU cores finish it in a few minutes.
DEMO_EPOCHS = 4
# The learning rate of the demo's fine-tuning of the bundled model (warm-up start and peak). Its
# wide full-resolution stage loses the plain frames' fine speckle fast: 200 steps at the lite
# preset's rates (3e-5 rising to 1e-4) took the held-out frames' NIQE from 3.69 to 4.49, at 1e-5
# to 3.81 (the model before the texture-keeping term: 3.80, 4.74 and 3.88; float32 the same as
# bfloat16).
DEMO_FINE_TUNING_LR = 1e-5
DEMO_STEPS_PER_EPOCH = 50


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="train briefly on bundled data, enhance, and write a before/after picture and metrics",
        description="Run the main job end to end: train the lite preset briefly, enhance held-back images, "
        "and write a before/after grid and a metrics table.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--data",
        metavar="ROOT",
        help="CORN-style root (trainA/ = LQ, trainB/ = HQ, testA/ = images to enhance); default: the "
        "repository's data/ccmid sample, or generated synthetic images when it is not there",
    )
    parser.add_argument("--synthetic", action="store_true", help="use generated synthetic images (with fibre masks)")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="generator to fine-tune (default on the bundled CCMID sample: ccmid-lite)")
    parser.add_argument("--from-scratch", action="store_true", help="train from a random initialisation")
    add_config_options(parser)
    parser.set_defaults(run=run, epochs=None)
    return parser


def _bundled_root() -> str | None:
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = os.path.join(repository, "data", "ccmid")
    return root if os.path.isdir(os.path.join(root, "trainA")) else None


def _synthetic_root(out_dir: str) -> str:
    from ssp_keras.data.synthetic import generate_dataset

    root = os.path.join(out_dir, "data")
    if not os.path.isdir(os.path.join(root, "trainA")):
        print(f"Generating synthetic nerve-fibre images in {root}", flush=True)
        # 384 px like CCMID frames: NIQE needs 96 px blocks at two scales.
        generate_dataset(root, count=16, size=384, seed=0, test_count=4)
    return root


def _compatible_pretrained(config) -> bool:
    """True when the bundled ccmid-lite generator is on this machine and fits ``config``."""
    from ssp_keras.config import preset
    from ssp_keras.pretrained import pretrained_path

    try:
        pretrained_path("ccmid-lite")
    except ValueError:
        return False
    lite = preset("lite")
    # the full-resolution skip and the decoder widths are the bundled model's own (the demo takes
    # them from its config.json)
    same = dataclasses.replace(config.generator, full_resolution_skip=lite.generator.full_resolution_skip,
                               decoder_widths=lite.generator.decoder_widths)
    return same == lite.generator and config.data.channels == lite.data.channels


def fine_tuning_config(config, name: str):
    """``config`` set to fine-tune the bundled model ``name`` on what it was trained for: the same
    degradation of G's input, the same consistency and paired terms (the restoration term's
    teacher being the bundled model itself: its own teacher's path is of the machine that trained
    it) and its architecture (a saved skip cannot be removed, nor a decoder stage narrowed).
    ``config`` unchanged where the model ships without its ``config.json``."""
    from ssp_keras.pretrained import pretrained_config

    trained = pretrained_config(name)
    if trained is None:
        return config
    return config.replace(degradation=trained.to_dict()["degradation"], **{
        f"loss.{setting}": getattr(trained.loss, setting)
        for setting in ("shading_consistency", "shading_consistency_strength",
                        "restoration_consistency", "synthetic_restoration", "texture_keeping")},
        **{"loss.restoration_teacher": name if trained.loss.restoration_consistency else None,
           "generator.full_resolution_skip": trained.generator.full_resolution_skip,
           "generator.decoder_widths": trained.generator.decoder_widths})


def run(args: argparse.Namespace) -> int:
    from ssp_keras.cli.options import require_corn_root, require_model, require_output_folder

    # Before TensorFlow loads (seconds), with the messages the later checks would give.
    require_corn_root(args.data)
    require_output_folder(args.out)
    require_model(args.init_from)
    config = config_from_args(args, default_preset="lite")  # a bad setting too
    from ssp_keras.utils.locks import claim_folder

    with claim_folder(args.out, "ssp-net demo"):
        return _demo(args, config)


def _demo(args: argparse.Namespace, config) -> int:
    import keras

    from ssp_keras.errors import InputError
    from ssp_keras.evaluation.report import evaluate
    from ssp_keras.training.trainer import corn_folders, train
    from ssp_keras.utils.files import atomic_write_bytes

    started = time.time()
    if args.data:
        root = args.data
    elif args.synthetic or _bundled_root() is None:
        root = _synthetic_root(args.out)
    else:
        root = _bundled_root()
    lq, hq = corn_folders(root)
    test_images = os.path.join(root, "testA")
    if not os.path.isdir(test_images):
        raise InputError(f"'{root}' has no testA/ folder of images to enhance")
    labels = os.path.join(root, "masks")

    if args.epochs is None:
        config = config.replace(**{"train.epochs": DEMO_EPOCHS})
    if args.steps_per_epoch is None:
        config = config.replace(**{"train.steps_per_epoch": DEMO_STEPS_PER_EPOCH})

    # A few hundred CPU steps from scratch leave a GAN in its unstable early phase (dark blotches on
    # full frames), so on the bundled CCMID sample the demo fine-tunes the bundled model instead.
    initial = None
    if root == _bundled_root() and not args.from_scratch and args.init_from is None and _compatible_pretrained(config):
        initial = "ccmid-lite"
        if not args.config:
            config = fine_tuning_config(config, initial).replace(
                **{"train.lr_warmup_start": DEMO_FINE_TUNING_LR, "train.lr_peak": DEMO_FINE_TUNING_LR})
    elif args.init_from:
        initial = args.init_from
    what = f"fine-tuning {initial}" if initial else f"training the {config.preset} preset from scratch"
    print(f"Demo: {what} on {lq} (LQ) and {hq} (HQ), {config.train.epochs} epochs x "
          f"{config.train.steps_per_epoch} steps", flush=True)
    run_dir = os.path.join(args.out, "run")
    result = train(config, lq, hq, run_dir, verbose=2, initial_generator=initial)

    print(f"Enhancing {test_images} and measuring against the baselines", flush=True)
    generator = keras.saving.load_model(result.generator_path, compile=False)
    report = evaluate(
        generator,
        test_images,
        os.path.join(args.out, "report"),
        labels=labels if os.path.isdir(labels) else None,
        baselines=("clahe", "dcp"),
        overwrite=True,  # the demo's own report folder: a second demo run replaces it
    )
    label = f"SSP-Net ({'fine-tuned ' + initial if initial else config.preset + ', from scratch'})"
    _write_before_after(report, os.path.join(args.out, "before_after.png"), label)
    losses = _losses_table(os.path.join(run_dir, "history.csv"))
    atomic_write_bytes(os.path.join(args.out, "losses.md"), losses.encode())

    print()
    print(report.markdown())
    print(losses)
    print(f"Before/after picture: {os.path.join(args.out, 'before_after.png')}")
    print(f"Full report: {os.path.join(args.out, 'report', 'report.md')}")
    print(f"Demo finished in {time.time() - started:.0f} s")
    return 0


def _write_before_after(report, path: str, model_label: str) -> None:
    """Whole frames, labelled columns: original | SSP-Net, one row per test image."""
    from ssp_keras.data.reading import read_image
    from ssp_keras.data.writing import write_image
    from ssp_keras.utils.image_grid import comparison_grid

    rows = [[read_image(original, 1), read_image(result, 1)] for original, result in report.image_pairs("model")]
    write_image(path, comparison_grid(rows, ["original", model_label], cell=384))


def _losses_table(history_csv: str) -> str:
    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = ["d_loss", "g_loss", "adv_loss", "iu_loss", "te_loss"]
    lines = ["| epoch | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for row in rows:
        lines.append(f"| {int(row['epoch']) + 1} | " + " | ".join(f"{float(row[n]):.4f}" for n in names) + " |")
    return "Training losses (mean per epoch)\n\n" + "\n".join(lines) + "\n"
