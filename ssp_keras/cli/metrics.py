"""``ssp-net metrics``: the paper's no-reference metrics (Table 1) of image files.

For every image (files, or folders searched recursively): entropy, average gradient (AvG), NIQE
and PIQE, computed on the 8-bit luma as in ``ssp_keras.metrics``. A table by default; ``--json``
prints ``{"images": [{"path", "entropy", "average_gradient", "niqe", "piqe"}, ...], "mean": {...}}``
instead, with ``null`` for undefined values (NIQE of images smaller than 96x96).
"""

from __future__ import annotations

import argparse
import json
import math


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "metrics",
        help="entropy, AvG, NIQE and PIQE of images",
        description="Print the paper's no-reference metrics (Table 1) of each image: entropy and average "
        "gradient (higher is better), NIQE and PIQE (lower is better).",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files and/or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
    return parser


def image_files(paths) -> list:
    """Files as given and the images of folders (sorted); `InputError` for a missing path."""
    from ssp_keras.data.io import expand_image_paths

    return expand_image_paths(paths, missing="image not found: '{}'")


def measure_files(paths) -> list:
    """``[{"path", "entropy", "average_gradient", "niqe", "piqe"}]`` for image files and folders."""
    from ssp_keras.data.io import read_image
    from ssp_keras.evaluation.report import no_reference_metrics

    return [{"path": path, **no_reference_metrics(read_image(path))} for path in image_files(paths)]


def run(args: argparse.Namespace) -> int:
    from ssp_keras.evaluation.report import METRIC_LABELS, TABLE1_METRICS, Summary, json_safe

    rows = measure_files(args.images)
    means = {metric: Summary.of([row[metric] for row in rows]).mean for metric in TABLE1_METRICS}
    if args.json:
        print(json.dumps(json_safe({"images": rows, "mean": means}), indent=2))
        return 0
    headers = ["image"] + [METRIC_LABELS[metric] for metric in TABLE1_METRICS]
    lines = [[row["path"]] + [_number(row[metric]) for metric in TABLE1_METRICS] for row in rows]
    if len(rows) > 1:
        lines.append(["mean"] + [_number(means[metric]) for metric in TABLE1_METRICS])
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines)]
    for line in [headers] + lines:
        # The image column is left-aligned, the numbers right-aligned.
        print("  ".join(cell.ljust(width) if index == 0 else cell.rjust(width)
                        for index, (cell, width) in enumerate(zip(line, widths))))
    print("Entropy and AvG: higher is better; NIQE and PIQE: lower is better.")
    return 0


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"
