"""``ssp-net evaluate``: measure enhancement like the paper (Tables 1 and 2) on a test folder.

Enhances every image with the original, the baselines and the model, writes the enhanced images,
``report.md``, ``report.json`` and ``comparison.png`` under ``--out`` (see
``ssp_keras.evaluation.report``), and prints the tables.
"""

from __future__ import annotations

import argparse

from ssp_keras.cli.enhance import EXIT_SOME_SKIPPED


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import POSITIVE_INT
    from ssp_keras.evaluation.report import DEFAULT_BASELINES, DEFAULT_GRID_ROWS, DEFAULT_MODEL_NAME

    parser = subparsers.add_parser(
        "evaluate",
        help="Tables 1 and 2 of the paper for a model and the baselines",
        description="Enhance a folder of test images with the model and the baselines, and report the "
        "no-reference metrics (Table 1) and, with --labels, the fibre segmentation metrics (Table 2). Exit "
        "status: 0 done; 1 a file could not be written part-way (one line); 2 bad input (labels or masks "
        "missing, unreadable or of another size than their images, an --out that holds a report without "
        "--overwrite or is in use), nothing written; 3 some unreadable images were left out (named).",
    )
    parser.add_argument("--model", metavar="RUN_DIR|FILE.keras|NAME",
                        help="run folder, generator .keras file or pretrained name (e.g. ccmid-lite); "
                        "leave out to compare the baselines only")
    parser.add_argument("--images", required=True, metavar="DIR", help="test images (searched recursively)")
    parser.add_argument("--labels", metavar="DIR", help="fibre masks with the images' names (nonzero = fibre): adds Table 2")
    parser.add_argument("--masks", metavar="DIR",
                        help="field-of-view masks with the images' names (Table 2 counts only their pixels)")
    parser.add_argument("--segmenter", metavar="SEG_DIR",
                        help="segmenter folder (ssp-net segmenter train) or .keras file; with --labels and no "
                        "--segmenter, a small one is first trained on synthetic images (about a minute)")
    parser.add_argument("--baselines", default=",".join(DEFAULT_BASELINES), metavar="LIST",
                        help=f"comma-separated baselines (default {','.join(DEFAULT_BASELINES)}; '' or none for none)")
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME,
                        help=f"column name of the model (default {DEFAULT_MODEL_NAME})")
    parser.add_argument("--grid-rows", type=POSITIVE_INT, default=DEFAULT_GRID_ROWS, metavar="N",
                        help=f"images shown in comparison.png (default {DEFAULT_GRID_ROWS})")
    parser.add_argument("--out", required=True, metavar="REPORT_DIR",
                        help="report folder (created; one that holds a report is refused unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the report already in REPORT_DIR: its files and method folders are removed first")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    parser.set_defaults(run=run)
    return parser


def parse_baselines(text: str) -> tuple:
    """``"clahe, dcp"`` -> ``("clahe", "dcp")``; ``""`` or ``"none"`` -> ``()``."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    return () if names in ((), ("none",)) else names


def run(args: argparse.Namespace) -> int:
    from ssp_keras.cli.options import require_folder, require_model, require_output_folder

    if args.masks and not args.labels:
        from ssp_keras.errors import InputError

        raise InputError("--masks (field of view) only applies to Table 2: give --labels too")
    # Before TensorFlow loads (seconds), with the messages `evaluate` would give.
    require_folder(args.images, "images")
    require_folder(args.labels, "labels")
    require_folder(args.masks, "masks")
    require_model(args.model)
    require_output_folder(args.out)
    from ssp_keras.utils.locks import claim_folder

    with claim_folder(args.out, "ssp-net evaluate"):  # writable and not in use, before the model loads
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from ssp_keras.evaluation.report import evaluate

    report = evaluate(
        args.model,
        args.images,
        args.out,
        labels=args.labels,
        masks=args.masks,
        segmenter=args.segmenter,
        baselines=parse_baselines(args.baselines),
        max_grid_rows=args.grid_rows,
        model_name=args.model_name,
        progress=None if args.quiet else print,
        overwrite=args.overwrite,
    )
    print(report.markdown())
    print(f"Report written to {report.markdown_path}, {report.json_path} and {report.grid_path}"
          + (f"; {len(report.skipped)} unreadable image(s) left out (named above; exit status "
             f"{EXIT_SOME_SKIPPED})" if report.skipped else ""))
    return EXIT_SOME_SKIPPED if report.skipped else 0
