"""``ssp-net metrics``: the paper's no-reference metrics (Table 1) of image files.

For every image (files, or folders searched recursively): entropy, average gradient (AvG), NIQE
and PIQE, computed on the 8-bit luma as in ``ssp_keras.metrics``. A table by default; ``--json``
prints ``{"images": [{"path", "entropy", "average_gradient", "niqe", "piqe"}, ...], "mean": {...},
"skipped": [{"path", "reason"}, ...]}`` instead, with ``null`` for undefined values (NIQE of images
smaller than 96x96). A file that cannot be measured (unreadable, smaller than 2x2 pixels) is
skipped with a warning naming it, and the command exits with status 3, as ``ssp-net enhance``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math

from ssp_keras.cli.enhance import EXIT_SOME_SKIPPED
from ssp_keras.errors import InputError

logger = logging.getLogger(__name__)


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "metrics",
        help="entropy, AvG, NIQE and PIQE of images",
        description="Print the paper's no-reference metrics (Table 1) of each image: entropy and average "
        "gradient (higher is better), NIQE and PIQE (lower is better). Exit status: 0 every image measured; "
        "2 bad input (a missing path, no measurable image at all); 3 some files could not be measured "
        "(unreadable, or smaller than 2x2 pixels): each is named, the others are measured.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files and/or folders (searched recursively)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)
    return parser


def image_files(paths) -> list:
    """Files as given and the images of folders (sorted); `InputError` for a missing path."""
    from ssp_keras.data.listing import expand_image_paths

    return expand_image_paths(paths, missing="image not found: '{}'")


def measure_files(paths) -> tuple:
    """``(rows, skipped)``: the metrics of every file that can be measured, and ``(path, reason)``
    for each that cannot (unreadable, or too small: fewer than 2x2 pixels), logged by name."""
    from ssp_keras.data.reading import read_image
    from ssp_keras.evaluation.report import no_reference_metrics

    rows, skipped = [], []
    for path in image_files(paths):
        try:
            rows.append({"path": path, **no_reference_metrics(read_image(path))})
        except InputError as error:
            reason = getattr(error, "reason", None) or str(error).removeprefix("image: ")
            logger.warning("skipping '%s': %s", path, reason)
            skipped.append((path, reason))
    return rows, skipped


def run(args: argparse.Namespace) -> int:
    from ssp_keras.evaluation.report import METRIC_LABELS, TABLE1_METRICS, Summary, json_safe

    rows, skipped = measure_files(args.images)
    if not rows:
        raise InputError(f"no image could be measured: all {len(skipped)} file(s) were skipped "
                         f"(first: '{skipped[0][0]}': {skipped[0][1]})")
    means = {metric: Summary.of([row[metric] for row in rows]).mean for metric in TABLE1_METRICS}
    status = EXIT_SOME_SKIPPED if skipped else 0
    if args.json:
        listed = [{"path": path, "reason": reason} for path, reason in skipped]
        print(json.dumps(json_safe({"images": rows, "mean": means, "skipped": listed}), indent=2))
        return status
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
    if skipped:
        print(f"Skipped {len(skipped)} file(s) that could not be measured (named above; exit status {status}).")
    return status


def _number(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"
