"""The loss ablation of the paper's Table 3: L_GAN, L_GAN + L_IU, L_GAN + L_TE and L_GAN + L_SP.

Trains the four loss variants (config ``loss.variant`` = ``gan``, ``gan+iu``, ``gan+te``,
``gan+sp``) with the same preset, seed, data and step budget through
``ssp_keras.training.trainer.train``, evaluates each generator on the test folder with
``ssp_keras.evaluation.report.evaluate`` (no baselines: the original images are the reference
row), and prints one table of mean ± std (Entropy, AvG, NIQE, PIQE; Dice too with ``--labels``).

Run by hand (defaults: the bundled CCMID subset, ``lite`` preset, 100 steps per variant in 2
epochs; a lite step took 1-2 s on two busy CPU cores, plus about 30 s of tracing per variant and
about 10 s of evaluation, so about 10 minutes in all)::

    python benchmarks/ablation.py [--data data/ccmid] [--steps 100] [--out RUNS_DIR] [--json results.json]

``--data ROOT`` reads ``ROOT/trainA`` (LQ), ``ROOT/trainB`` (HQ) and evaluates on ``ROOT/testA``;
``--lq``/``--hq``/``--test`` name the folders directly. Each variant's run folder (checkpoints,
generator) and report land under ``--out`` (default: a new temporary folder); running again on
the same ``--out`` resumes finished runs instead of retraining them.

With a budget this small, the learning-rate warm-up is shortened to a tenth of the steps (the
paper's 500 iterations would never reach the peak rate); everything else is the preset's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(REPOSITORY, "data", "ccmid")
VARIANTS = ("gan", "gan+iu", "gan+te", "gan+sp")
VARIANT_LABELS = {"gan": "L_GAN", "gan+iu": "L_GAN + L_IU", "gan+te": "L_GAN + L_TE", "gan+sp": "L_GAN + L_SP (SSP-Net)"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=DEFAULT_DATA, metavar="ROOT", help="CORN-style root (trainA, trainB, testA)")
    parser.add_argument("--lq", metavar="DIR", help="LQ training images (default ROOT/trainA)")
    parser.add_argument("--hq", metavar="DIR", help="HQ training images (default ROOT/trainB)")
    parser.add_argument("--test", metavar="DIR", help="test images (default ROOT/testA)")
    parser.add_argument("--labels", metavar="DIR", help="fibre masks of the test images: adds Dice (Table 2)")
    parser.add_argument("--masks", metavar="DIR", help="field-of-view masks of the test images")
    parser.add_argument("--segmenter", metavar="SEG_DIR", help="segmenter for --labels (default: a quick synthetic one)")
    parser.add_argument("--preset", choices=("lite", "paper"), default="lite")
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per variant (default 100)")
    parser.add_argument("--epochs", type=int, default=2, help="the steps are split into this many epochs (default 2)")
    parser.add_argument("--batch-size", type=int, help="images per domain (default: the preset's)")
    parser.add_argument("--image-size", type=int, help="training crop side (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="the same for every variant (default 0)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--out", metavar="RUNS_DIR", help="run folders and reports (default: a new temporary folder)")
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    parser.add_argument("--verbose-fit", type=int, choices=(0, 1, 2), default=2)
    common.add_dry_run_argument(parser)
    args = parser.parse_args(argv)
    args.variants = tuple(name.strip() for name in args.variants.split(",") if name.strip())
    unknown = [name for name in args.variants if name not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    if args.steps < 1 or args.epochs < 1:
        parser.error("--steps and --epochs must be positive")
    return args


def variant_config(args: argparse.Namespace, variant: str):
    """The preset with the shared budget and seed, and ``loss.variant`` set."""
    from ssp_keras.config import preset

    steps_per_epoch = math.ceil(args.steps / args.epochs)
    overrides = {
        "loss.variant": variant,
        "train.epochs": args.epochs,
        "train.steps_per_epoch": steps_per_epoch,
        "train.seed": args.seed,
        "train.lr_warmup_steps": min(preset(args.preset).train.lr_warmup_steps, max(1, args.steps // 10)),
    }
    if args.batch_size:
        overrides["train.batch_size"] = args.batch_size
    if args.image_size:
        overrides["data.image_size"] = args.image_size
    return preset(args.preset).replace(**overrides)


def format_cell(summary: dict) -> str:
    if not summary or not summary.get("count"):
        return "n/a"
    return f"{summary['mean']:.4f} ± {summary['std']:.4f}"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        return common.dry_run(args, f"the loss variants {', '.join(args.variants)} of the {args.preset} preset, "
                                    f"{args.steps} steps each on {args.lq or args.data}, then their evaluation")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ssp_keras.errors import InputError
    from ssp_keras.evaluation.report import ORIGINAL, TABLE1_METRICS, evaluate
    from ssp_keras.training.trainer import train
    from ssp_keras.utils.files import atomic_write_bytes

    lq = args.lq or os.path.join(args.data, "trainA")
    hq = args.hq or os.path.join(args.data, "trainB")
    test = args.test or os.path.join(args.data, "testA")
    out = args.out or tempfile.mkdtemp(prefix="ssp-ablation-")
    print(f"Runs and reports under {out}", flush=True)
    metrics = TABLE1_METRICS + (("dice",) if args.labels else ())
    segmenter = args.segmenter

    rows, original_row = {}, None
    try:
        for variant in args.variants:
            config = variant_config(args, variant)
            run_dir = os.path.join(out, variant.replace("+", "_"))
            budget = f"{config.train.epochs} x {config.train.steps_per_epoch} steps"
            print(f"\n=== {VARIANT_LABELS[variant]}: {budget}", flush=True)
            started = time.perf_counter()
            result = train(config, lq, hq, run_dir, verbose=args.verbose_fit)
            train_seconds = time.perf_counter() - started
            report = evaluate(
                result.generator_path, test, os.path.join(run_dir, "report"),
                labels=args.labels, masks=args.masks, segmenter=segmenter, baselines=(), model_name=variant,
            )
            if args.labels and segmenter is None:  # train the quick segmenter once, reuse it after
                segmenter = os.path.join(run_dir, "report", "segmenter")
            summaries = report.to_dict()
            tables = {**summaries["table1"][variant], **((summaries["table2"] or {}).get(variant, {}))}
            rows[variant] = {"metrics": {name: tables[name] for name in metrics}, "train_s": round(train_seconds, 1),
                             "steps": config.train.epochs * config.train.steps_per_epoch}
            if original_row is None:
                original_tables = {**summaries["table1"][ORIGINAL], **((summaries["table2"] or {}).get(ORIGINAL, {}))}
                original_row = {"metrics": {name: original_tables[name] for name in metrics}}
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    directions = {"niqe": "↓", "piqe": "↓"}
    labels = {"entropy": "Entropy", "average_gradient": "AvG", "niqe": "NIQE", "piqe": "PIQE", "dice": "Dice"}
    header = "| Loss | " + " | ".join(f"{labels[name]} {directions.get(name, '↑')}" for name in metrics) + " | train (s) |"
    lines = [header, "|---|" + "---:|" * (len(metrics) + 1)]
    original_cells = " | ".join(format_cell(original_row["metrics"][name]) for name in metrics)
    lines.append(f"| original (test LQ) | {original_cells} | |")
    for variant, row in rows.items():
        cells = " | ".join(format_cell(row["metrics"][name]) for name in metrics)
        lines.append(f"| {VARIANT_LABELS[variant]} | {cells} | {row['train_s']:.0f} |")
    print(f"\nTable 3 ablation: preset {args.preset}, {args.steps} steps per variant, seed {args.seed}, "
          f"test images {test}\n")
    print("\n".join(lines))
    if args.json:
        payload = {
            "settings": {"preset": args.preset, "steps": args.steps, "epochs": args.epochs, "seed": args.seed,
                         "lq": lq, "hq": hq, "test": test, "labels": args.labels, "out": out},
            "original": original_row,
            "variants": rows,
        }
        atomic_write_bytes(args.json, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
