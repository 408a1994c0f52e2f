"""The files of an evaluation report: ``report.md`` and ``report.json``, and what a report folder holds.

:class:`EvaluationReport` is the result of `ssp_keras.evaluation.report.evaluate`, written as
Markdown (both tables, notes, timing) and JSON (the same numbers, per image too; NaN as ``null``);
:func:`load_report` reads the JSON back. A report is replaced whole or not at all:
:func:`check_report_folder` refuses a folder holding one unless asked to overwrite, and
:func:`remove_previous_report` clears the previous one's files first.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.evaluation.tables import (
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PRECISION_FOOTNOTE,
    TABLE1_METRICS,
    TABLE2_METRICS,
    Table,
)

REPORT_MARKDOWN = "report.md"
REPORT_JSON = "report.json"
GRID_FILE = "comparison.png"


@dataclasses.dataclass
class EvaluationReport:
    """The result of :func:`evaluate`; also written as ``report.md`` and ``report.json``.

    Attributes:
        out_dir: the report folder.
        methods: column order: ``original``, the baselines, then the model (if any).
        images: image names (stems), row order.
        table1: ``{method: {metric: Summary}}`` for :data:`TABLE1_METRICS`.
        table2: same for :data:`TABLE2_METRICS`, or None without labels.
        per_image: ``{method: {image: {metric: value}}}`` (both tables' metrics).
        timing: ``{"metrics": ..., "enhance": ..., "segment": ..., "total_s": ...}`` (see Timer).
        grid: layout of ``comparison.png`` (file, rows, columns, cell size, names).
        sources: where images, labels, masks, model and segmenter came from.
        notes: remarks printed under the tables (undefined values, quick segmenter).
        image_paths: the input file of each image, in ``images`` order.
        model_method: the model's method name, or None without a model.
        skipped: ``(path, reason)`` of the test images that could not be read (left out, named).
    """

    out_dir: str
    methods: List[str]
    images: List[str]
    table1: Table
    table2: Optional[Table]
    per_image: Dict[str, Dict[str, Dict[str, float]]]
    timing: Dict[str, object]
    grid: Dict[str, object]
    sources: Dict[str, object]
    notes: List[str]
    image_paths: List[str] = dataclasses.field(default_factory=list)
    model_method: Optional[str] = None
    skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)

    def enhanced_path(self, method: str, image: str) -> str:
        """Where the image named ``image`` (a stem) enhanced by ``method`` was written."""
        return os.path.join(self.out_dir, method, f"{image}.png")

    def image_pairs(self, method: str = "model") -> List[Tuple[str, str]]:
        """``[(input file, enhanced file)]`` for ``method``; ``"model"`` means the model's column.

        Raises ``ValueError`` for a method not in the report (or ``"model"`` without a model).
        """
        if method == "model" and self.model_method is not None:
            method = self.model_method
        if method not in self.methods:
            raise ValueError(f"no method {method!r} in this report; it has {self.methods}")
        return [(path, self.enhanced_path(method, name)) for path, name in zip(self.image_paths, self.images)]

    @property
    def markdown_path(self) -> str:
        return os.path.join(self.out_dir, REPORT_MARKDOWN)

    @property
    def json_path(self) -> str:
        return os.path.join(self.out_dir, REPORT_JSON)

    @property
    def grid_path(self) -> str:
        return os.path.join(self.out_dir, str(self.grid["file"]))

    def to_dict(self) -> dict:
        """Plain JSON-ready values (NaN becomes None)."""

        def table(values: Optional[Table]):
            if values is None:
                return None
            return {
                method: {metric: dataclasses.asdict(summary) for metric, summary in metrics.items()}
                for method, metrics in values.items()
            }

        return json_safe(
            {
                "format": "ssp-keras evaluation report, version 1",
                "methods": self.methods,
                "images": self.images,
                "inputs": self.image_paths,
                "model_method": self.model_method,
                "table1": table(self.table1),
                "table2": table(self.table2),
                "per_image": self.per_image,
                "timing": self.timing,
                "grid": self.grid,
                "sources": self.sources,
                "notes": self.notes,
                "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            }
        )

    def markdown(self) -> str:
        """The report as Markdown: Table 1, Table 2 (if any), notes, timing, files."""
        count = len(self.images)
        lines = [
            "# Enhancement evaluation",
            "",
            f"{count} image{'s' if count != 1 else ''} from `{self.sources['images']}`; "
            f"methods: {', '.join(self.methods)}.",
        ]
        if self.sources.get("model"):
            lines.append(f"Model: `{self.sources['model']}`.")
        lines += [
            "",
            f"## Table 1: no-reference quality (mean ± std over {count} images)",
            "",
            *_markdown_table(self.table1, self.methods, TABLE1_METRICS),
        ]
        if self.table2 is not None:
            lines += [
                "",
                f"## Table 2: fibre segmentation of the enhanced images (mean ± std over {count} images)",
                "",
                f"Segmenter: {self.sources.get('segmenter')}. "
                + ("Inside the field-of-view masks. " if self.sources.get("masks") else "")
                + "Threshold 0.5 on the probability map (AUC uses the map itself).",
                "",
                *_markdown_table(self.table2, self.methods, TABLE2_METRICS),
                "",
                f"[^precision]: {PRECISION_FOOTNOTE}",
            ]
        lines += ["", "↑ higher is better, ↓ lower is better; the best mean of each row is in bold."]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        lines += ["", "## Timing", "", "| step | calls | total (s) | per call (ms) |", "|---|---:|---:|---:|"]
        for group in ("metrics", "enhance", "segment"):
            for name, values in (self.timing.get(group) or {}).items():
                lines.append(f"| {group}: {name} | {values['calls']} | {values['total_s']:.3f} | {values['mean_ms']:.1f} |")
        lines.append(f"| total | | {self.timing['total_s']:.3f} | |")
        lines += [
            "",
            "## Files",
            "",
            f"![comparison: rows are images, columns are methods]({self.grid['file']})",
            "",
            "Enhanced images: " + ", ".join(f"`{method}/`" for method in self.methods) + ".",
            "",
        ]
        return "\n".join(lines)


def _markdown_table(table: Table, methods: Sequence[str], metrics: Sequence[str]) -> List[str]:
    """Rows are metrics, columns methods (the paper's layout); the best mean is bold."""
    lines = ["| Metric | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for metric in metrics:
        lower = metric in LOWER_IS_BETTER
        means = [table[method][metric].mean for method in methods]
        finite = [mean for mean in means if math.isfinite(mean)]
        best = (min(finite) if lower else max(finite)) if finite else None
        cells = []
        for method, mean in zip(methods, means):
            text = table[method][metric].format()
            cells.append(f"**{text}**" if best is not None and mean == best and len(methods) > 1 else text)
        arrow = "↓" if lower else "↑"
        lines.append(f"| {METRIC_LABELS[metric]} {arrow} | " + " | ".join(cells) + " |")
    return lines


def json_safe(value):
    """NaN/Inf to None, NumPy scalars to Python, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def report_outputs(out_dir: str, methods: Sequence[str], names: Sequence[str]) -> List[str]:
    """Every file a report of ``methods`` on the images ``names`` (stems) writes into ``out_dir``."""
    files = [os.path.join(out_dir, name) for name in (REPORT_MARKDOWN, REPORT_JSON, GRID_FILE)]
    return files + [os.path.join(out_dir, method, f"{name}.png") for method in methods for name in names]


def _previous_report_outputs(out_dir: str) -> List[str]:
    """The files the report already in ``out_dir`` wrote (from its report.json; none without one)."""
    try:
        previous = load_report(out_dir)
        files = report_outputs(out_dir, previous["methods"], previous["images"])
        grid = previous.get("grid", {}).get("file")
    except (InputError, KeyError, TypeError, AttributeError):
        return []
    return files + ([os.path.join(out_dir, os.path.basename(str(grid)))] if grid else [])


def check_report_folder(out_dir: str, methods: Sequence[str], names: Sequence[str], overwrite: bool) -> None:
    """`InputError` when ``out_dir`` holds a report, or files this one would write, unless ``overwrite``.

    A report replaced in part would mix two evaluations (and keep the previous one's method
    folders beside the new ones); `remove_previous_report` clears it when replacing is asked for.
    """
    existing = [path for path in dict.fromkeys(report_outputs(out_dir, methods, names) + _previous_report_outputs(out_dir))
                if os.path.lexists(path)]
    if existing and not overwrite:
        raise InputError(
            f"'{out_dir}' already holds a report ({len(existing)} file(s), first '{existing[0]}'); pass "
            "--overwrite to replace it (its files are removed first), or choose another --out"
        )


def remove_previous_report(out_dir: str) -> List[str]:
    """Removes what the report in ``out_dir`` wrote (its report.json says what), and its method
    folders once empty; other files are left. Returns the removed files."""
    removed = []
    for path in dict.fromkeys(_previous_report_outputs(out_dir)):
        if os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    for folder in {os.path.dirname(path) for path in removed} - {os.path.abspath(out_dir), out_dir}:
        try:
            os.rmdir(folder)  # only when empty
        except OSError:
            pass
    return removed


def write_report(report: EvaluationReport) -> None:
    """``report.json`` and ``report.md``, atomically."""
    from ssp_keras.utils.files import atomic_write_bytes

    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(report.json_path, text.encode("utf-8"))
    atomic_write_bytes(report.markdown_path, report.markdown().encode("utf-8"))


def load_report(path: str) -> dict:
    """A ``report.json`` (or the folder holding one) as a dict; `InputError` if missing/invalid."""
    if os.path.isdir(path):
        path = os.path.join(path, REPORT_JSON)
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        raise InputError(f"report not found: '{path}'") from None
    except json.JSONDecodeError as error:
        raise InputError(f"'{path}' is not a valid report: {error}") from None
