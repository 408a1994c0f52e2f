"""Evaluation reports that measure enhancement like the paper (Tables 1 and 2).

:func:`evaluate` enhances every test image with every method, the original image, the classical
baselines (:mod:`ssp_keras.evaluation.baselines`, CLAHE and DCP by default) and the model, and
measures:

* Table 1, no-reference quality of each enhanced image (:mod:`ssp_keras.metrics`): entropy, average
  gradient (AvG), NIQE and PIQE, as mean ± standard deviation over the images;
* Table 2, when fibre labels are given: the enhanced images are segmented with a CS-Net
  (:mod:`ssp_keras.segmentation`) and scored against the labels (optionally inside
  field-of-view masks): AUC, accuracy, sensitivity, specificity, precision (the paper's "FDR"
  column, see :mod:`ssp_keras.metrics.segmentation`), Dice, G-mean and Cohen's kappa.

It writes, under the report folder::

    <method>/<image name>.png   every enhanced image (inputs are never touched)
    comparison.png              grid: one row per image (the first ``max_grid_rows``), one column
                                per method, method names in a header band
    report.md                   both tables, timing, notes
    report.json                 the same numbers, per image too, and the timing of every metric
    segmenter/                  only when labels came without a segmenter: the quick one trained

Conventions: standard deviations are over images with ``ddof=0`` (``numpy.std``); undefined
values (e.g. NIQE of an image smaller than 96x96, which has no complete NIQE block; sensitivity of
a label with no fibre) are NaN in memory, ``null`` in JSON, left out of means and counted in
``count``. Images, labels and masks are matched by file name without extension (stem).

Labels without a segmenter: rather than refusing, a small CS-Net is first trained on synthetic HQ
fibre images (:data:`QUICK_SEGMENTER`: 150 steps, about a minute on two CPU cores, 111 s on a
heavily shared machine) and saved under ``REPORT_DIR/segmenter/`` for reuse; the report says so.
Its Table 2 values are only meaningful on images that look like the synthetic ones; for real
images, train one on labelled HQ images (``ssp-net segmenter train``) and pass it.

This module runs the evaluation; the tables' metrics and summaries are in
`ssp_keras.evaluation.tables`, the report's files (Markdown, JSON, what a report folder holds) in
`ssp_keras.evaluation.report_files`; their names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ssp_keras.errors import InputError, OutputError
from ssp_keras.evaluation.report_files import (  # noqa: F401  (part of this API)
    GRID_FILE,
    REPORT_JSON,
    REPORT_MARKDOWN,
    EvaluationReport,
    check_report_folder,
    json_safe,
    load_report,
    remove_previous_report,
    report_outputs,
    write_report,
)
from ssp_keras.evaluation.tables import (  # noqa: F401  (part of this API)
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PRECISION_FOOTNOTE,
    TABLE1_METRICS,
    TABLE2_METRICS,
    Summary,
    Table,
    Timer,
    no_reference_metrics,
)
from ssp_keras.utils.image_grid import DEFAULT_GRID_CELL, comparison_grid, grid_size  # noqa: F401  (part of this API)

logger = logging.getLogger(__name__)

#: The baselines a report compares against unless told otherwise (SPEC section 6).
DEFAULT_BASELINES = ("clahe", "dcp")
#: The method name of the untouched input.
ORIGINAL = "original"
#: The method name of the generator, unless ``model_name`` says otherwise.
DEFAULT_MODEL_NAME = "ssp-net"
DEFAULT_GRID_ROWS = 6

#: The report's sub-folder for the segmenter trained when labels come without one.
QUICK_SEGMENTER_FOLDER = "segmenter"
#: Settings of the segmenter trained when labels come without one: small and fast (CS-Net's
#: layout at base width 8 and three poolings, 150 steps of 96-pixel crops).
QUICK_SEGMENTER = {
    "epochs": 3,
    "steps_per_epoch": 50,
    "image_size": 96,
    "batch_size": 4,
    "base_width": 8,
    "depth": 3,
    "synthetic_count": 12,
    "synthetic_size": 192,
}


# ============================================================================ evaluate
def _method_functions(generator, baselines: Sequence[str], model_name: str) -> Dict[str, Callable[[np.ndarray], np.ndarray]]:
    """``{method name: image -> enhanced image}``, original first, the model last."""
    from ssp_keras.evaluation.baselines import get_baseline, identity
    from ssp_keras.inference.enhance import enhance_array

    methods: Dict[str, Callable[[np.ndarray], np.ndarray]] = {ORIGINAL: identity}
    for name in baselines:
        if name in ("identity", ORIGINAL):
            raise InputError(f"baseline {name!r}: the original image is always in the report; list only enhancements")
        if name in methods:
            raise InputError(f"baseline {name!r} is listed twice")
        try:
            methods[name] = get_baseline(name)
        except ValueError as error:
            raise InputError(str(error)) from None
    if generator is not None:
        if model_name in methods or model_name == QUICK_SEGMENTER_FOLDER or not model_name or os.sep in model_name:
            raise InputError(
                f"model name {model_name!r} is empty, holds a '{os.sep}' or clashes with a baseline or a report folder"
            )
        methods[model_name] = lambda image: enhance_array(generator, image)
    return methods


def _resolve_generator(generator):
    """A Keras model from a model, or from a run folder / ``.keras`` file / pretrained name."""
    if generator is None or not isinstance(generator, (str, os.PathLike)):
        return generator, (getattr(generator, "name", None) if generator is not None else None)
    from ssp_keras.inference.loading import load_generator

    return load_generator(os.fspath(generator)), os.fspath(generator)


def _resolve_segmenter(segmenter, out_dir: str, progress: Callable[[str], None], quick: Mapping[str, object]):
    """``(model, description)`` from a model, a folder / ``.keras`` path, or None (quick training)."""
    from ssp_keras.segmentation.inference import load_segmenter
    from ssp_keras.segmentation.training import train_segmenter

    if segmenter is None:
        folder = os.path.join(out_dir, QUICK_SEGMENTER_FOLDER)
        steps = quick["epochs"] * quick["steps_per_epoch"]
        progress(f"no segmenter given: training a small CS-Net on synthetic fibre images ({steps} steps)")
        result = train_segmenter(None, None, folder, **quick)
        description = (
            f"CS-Net trained for {steps} steps on synthetic HQ fibre images ({result.seconds:.0f} s, "
            f"saved to `{QUICK_SEGMENTER_FOLDER}/`)"
        )
        return result.model, description
    if isinstance(segmenter, (str, os.PathLike)):
        return load_segmenter(os.fspath(segmenter)), f"`{os.fspath(segmenter)}`"
    return segmenter, f"the model `{getattr(segmenter, 'name', type(segmenter).__name__)}`"


def _check_folder(folder: Optional[str], what: str) -> None:
    if folder is not None and not os.path.isdir(folder):
        raise InputError(f"{what} folder not found: '{folder}'")


@dataclasses.dataclass
class _Inputs:
    """The test images and, matched by name (stem), their labels and field-of-view masks."""

    images: str
    labels: Optional[str]
    masks: Optional[str]
    image_paths: List[str]
    label_of: Dict[str, str]
    fov_of: Dict[str, str]

    def sources(self, model_source, segmenter_description) -> Dict[str, object]:
        used_masks = self.masks if self.labels is not None else None
        return {
            "images": os.path.abspath(self.images),
            "labels": os.path.abspath(self.labels) if self.labels is not None else None,
            "masks": os.path.abspath(used_masks) if used_masks is not None else None,
            "model": model_source,
            "segmenter": segmenter_description,
        }


def _match_inputs(images: str, labels: Optional[str], masks: Optional[str], out_dir: str) -> _Inputs:
    """Checks the folders, matches their files by name and checks that labels and masks have their
    images' sizes (from the headers), before any work (unreadable images are found when met)."""
    from ssp_keras.data.listing import list_images
    from ssp_keras.data.labels import check_sizes, index_by_stem, match_by_stem
    from ssp_keras.utils.files import check_output_location

    _check_folder(images, "images")
    _check_folder(labels, "labels")
    _check_folder(masks, "masks")
    try:
        check_output_location(out_dir, [folder for folder in (images, labels, masks) if folder is not None])
    except ValueError as error:
        raise InputError(str(error)) from None
    image_paths = list_images(images)
    index_by_stem(image_paths, images)  # unique names: they name the outputs
    label_of = match_by_stem(image_paths, images, labels, "label") if labels is not None else {}
    fov_of = match_by_stem(image_paths, images, masks, "mask") if (labels is not None and masks is not None) else {}
    if masks is not None and labels is None:
        logger.warning("field-of-view masks are only used with labels (Table 2); ignoring '%s'", masks)
    check_sizes(label_of)
    check_sizes(fov_of)
    return _Inputs(images, labels, masks, image_paths, label_of, fov_of)


class _Measurements:
    """Enhances, writes and measures one image after the other with every method."""

    def __init__(self, method_functions, segmenter, out_dir: str, channels: Optional[int]):
        self.method_functions = method_functions
        self.segmenter = segmenter
        self.out_dir = out_dir
        self.channels = channels
        self.metric_timer, self.enhance_timer, self.segment_timer = Timer(), Timer(), Timer()
        self.per_image: Dict[str, Dict[str, Dict[str, float]]] = {method: {} for method in method_functions}
        self.names: List[str] = []
        self.grid_cells: List[List[np.ndarray]] = []
        self.small_for_niqe: List[str] = []

    def measure(self, path: str, inputs: _Inputs, in_grid: bool) -> None:
        """Every method's enhancement of the image ``path``: written, measured, kept for the grid."""
        from ssp_keras.data.decoding import UnreadableImageError
        from ssp_keras.data.reading import read_image_with_info
        from ssp_keras.data.writing import write_image
        from ssp_keras.data.labels import read_binary_mask, stem
        from ssp_keras.data.samples import output_bit_depth
        from ssp_keras.metrics.niqe import NIQE_BLOCK_SIZE

        name = stem(path)
        image, info = read_image_with_info(path, self.channels)  # (unreadable: skipped by the caller)
        if min(image.shape[:2]) < 2:  # AvG's central differences need two rows and columns
            raise UnreadableImageError(path, f"too small to measure ({image.shape[1]}x{image.shape[0]} pixels; "
                                             "the metrics need at least 2x2)")
        self.names.append(name)
        label = read_binary_mask(inputs.label_of[path], image.shape[:2]) if path in inputs.label_of else None
        field_of_view = read_binary_mask(inputs.fov_of[path], image.shape[:2]) if path in inputs.fov_of else None
        if min(image.shape[:2]) < NIQE_BLOCK_SIZE:
            self.small_for_niqe.append(name)
        row = []
        for method, function in self.method_functions.items():
            enhanced = self.enhance_timer.run(method, function, image)
            destination = os.path.join(self.out_dir, method, f"{name}.png")  # EvaluationReport.enhanced_path
            write_image(destination, enhanced, bit_depth=output_bit_depth(destination, info.bit_depth))
            try:
                self.per_image[method][name] = self._metrics(enhanced, label, field_of_view)
            except InputError as error:  # e.g. an image too small to measure: name it
                raise InputError(f"cannot measure '{path}' ({method}): {str(error).removeprefix('image: ')}") from None
            if in_grid:
                row.append(enhanced)
        if row:
            self.grid_cells.append(row)

    def _metrics(self, enhanced: np.ndarray, label, field_of_view) -> Dict[str, float]:
        from ssp_keras.segmentation.inference import segment
        from ssp_keras.metrics import segmentation_metrics

        values = no_reference_metrics(enhanced, self.metric_timer)
        if label is not None:
            probabilities = self.segment_timer.run("segmenter", segment, self.segmenter, enhanced)
            values.update(self.metric_timer.run("segmentation", segmentation_metrics, probabilities, label, field_of_view))
        return values

    def table(self, metrics: Sequence[str]) -> Table:
        return {
            method: {metric: Summary.of([values[name][metric] for name in self.names]) for metric in metrics}
            for method, values in self.per_image.items()
        }

    def timing(self, started: float) -> Dict[str, object]:
        return {
            "metrics": self.metric_timer.summary(),
            "enhance": self.enhance_timer.summary(),
            "segment": self.segment_timer.summary(),
            "total_s": round(time.perf_counter() - started, 3),
        }


def _notes(measured: _Measurements, table1: Table, table2: Optional[Table], quick_segmenter: bool) -> List[str]:
    """The remarks under the tables: undefined values, and the quick segmenter's limits."""
    small = measured.small_for_niqe
    notes = []
    if small:
        notes.append(
            f"NIQE is undefined for {len(small)} image(s) smaller than 96x96 pixels "
            f"(its block size): {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}."
        )
    for method_table in (table1, table2 or {}):
        for method, metrics in method_table.items():
            for metric, summary in metrics.items():
                undefined = len(measured.names) - summary.count
                explained = metric == "niqe" and undefined == len(small)
                if undefined and not explained:
                    label = METRIC_LABELS[metric].split("[")[0]
                    notes.append(f"{method}: {label} is undefined for {undefined} image(s) and left out of its mean.")
    if quick_segmenter:
        notes.append(
            "The segmenter was trained on synthetic images only; on real images train one on labelled "
            "HQ images (`ssp-net segmenter train`) and pass it with --segmenter."
        )
    return notes


def _write_grid(measured: _Measurements, out_dir: str, cell: int) -> Dict[str, object]:
    """Writes ``comparison.png``; returns its layout."""
    from ssp_keras.data.writing import write_image

    methods = list(measured.method_functions)
    write_image(os.path.join(out_dir, GRID_FILE), comparison_grid(measured.grid_cells, methods, cell))
    return {
        "file": GRID_FILE,
        "rows": len(measured.grid_cells),
        "columns": len(methods),
        "cell_size": cell,
        "row_names": measured.names[: len(measured.grid_cells)],
        "column_names": methods,
    }


def evaluate(
    generator,
    images: str,
    out_dir: str,
    labels: Optional[str] = None,
    masks: Optional[str] = None,
    segmenter=None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    max_grid_rows: int = DEFAULT_GRID_ROWS,
    model_name: str = DEFAULT_MODEL_NAME,
    grid_cell_size: int = DEFAULT_GRID_CELL,
    progress: Optional[Callable[[str], None]] = None,
    quick_segmenter: Mapping[str, object] = QUICK_SEGMENTER,
    overwrite: bool = False,
) -> EvaluationReport:
    """Enhances a folder of test images with every method and measures them like the paper.

    Args:
        generator: a Keras image-to-image model, a run folder / ``.keras`` file / pretrained name
            (``ssp_keras.inference.load_generator``), or None to compare the baselines only.
        images: folder of test images (searched recursively; names, i.e. stems, must be unique).
        out_dir: the report folder (created); must not be, or lie inside, an input folder.
        labels: optional folder of binary fibre masks, one per image, same stem (nonzero = fibre).
            Enables Table 2.
        masks: optional folder of field-of-view masks, one per image, same stem; Table 2 counts
            only their nonzero pixels. Ignored without ``labels``.
        segmenter: a CS-Net model, a segmenter folder / ``.keras`` file, or None; with labels and
            no segmenter a quick one is trained on synthetic data (see the module docstring).
        baselines: names from ``ssp_keras.evaluation.baselines.BASELINES`` (not ``identity``:
            the original is always included).
        max_grid_rows: images shown in ``comparison.png`` (the first ones, in sorted order).
        model_name: the model's column and folder name.
        grid_cell_size: side of one grid cell in pixels.
        progress: called with one line per step (e.g. ``print``); silent when None.
        quick_segmenter: the `train_segmenter` settings of the quick segmenter (labels without a
            segmenter); :data:`QUICK_SEGMENTER` unless told otherwise.
        overwrite: replace a report already in ``out_dir`` (its files are removed first); without
            it such a folder is refused before any work.

    Returns:
        An :class:`EvaluationReport`; ``report.md``, ``report.json`` (atomic) and the grid are
        written under ``out_dir``.

    Raises:
        InputError: a missing folder, a folder without images, two images with the same name, a
            label or mask without image (or the reverse), an unreadable label or mask, no readable
            image at all (unreadable images are otherwise left out and named), a label of another
            size than its image, an unknown baseline, an output folder inside an input folder, one
            that holds a report (without ``overwrite``) or that another process is writing into.
        OutputError: a file could not be written part-way (a full disk).
    """
    from ssp_keras.data.labels import stem
    from ssp_keras.utils.locks import claim_folder

    if max_grid_rows < 1:
        raise ValueError(f"max_grid_rows must be >= 1, got {max_grid_rows}")
    inputs = _match_inputs(images, labels, masks, out_dir)
    methods = list(_method_functions(generator, baselines, model_name))  # the names: nothing is loaded yet
    names = [stem(path) for path in inputs.image_paths]
    check_report_folder(out_dir, methods, names, overwrite)
    with claim_folder(out_dir, "ssp-net evaluate"):
        check_report_folder(out_dir, methods, names, overwrite)  # again, as the folder's owner
        if overwrite:
            remove_previous_report(out_dir)
        try:
            return _evaluate(generator, inputs, out_dir, labels, segmenter, baselines, max_grid_rows, model_name,
                             grid_cell_size, progress, quick_segmenter)
        except OSError as error:
            written = sum(len(files) for _, _, files in os.walk(out_dir))
            raise OutputError(
                f"cannot write '{getattr(error, 'filename', None) or out_dir}': {error.strerror or error}; the report "
                f"was not written ({written} file(s) were written under '{out_dir}' before it, none is half-written)"
            ) from error


def _evaluate(generator, inputs: _Inputs, out_dir: str, labels, segmenter, baselines, max_grid_rows, model_name,
              grid_cell_size, progress, quick_segmenter) -> EvaluationReport:
    """`evaluate` once this process owns ``out_dir`` and the inputs are checked."""
    from ssp_keras.data.decoding import UnreadableImageError
    from ssp_keras.inference.compiled import model_channels

    started = time.perf_counter()
    say = progress or (lambda line: None)
    generator, model_source = _resolve_generator(generator)
    method_functions = _method_functions(generator, baselines, model_name)
    segmenter_model, segmenter_description = (None, None)
    if labels is not None:
        segmenter_model, segmenter_description = _resolve_segmenter(segmenter, out_dir, say, quick_segmenter)

    channels = model_channels(generator) if generator is not None else None
    measured = _Measurements(method_functions, segmenter_model, out_dir, channels)
    skipped = []
    for number, path in enumerate(inputs.image_paths, start=1):
        image_started = time.perf_counter()
        try:
            measured.measure(path, inputs, in_grid=len(measured.grid_cells) < max_grid_rows)
        except UnreadableImageError as error:  # as enhance and metrics do: named, left out
            logger.warning("skipping unreadable image '%s': %s", path, error.reason)
            skipped.append((path, error.reason))
            continue
        say(f"[{number}/{len(inputs.image_paths)}] {path} ({time.perf_counter() - image_started:.1f} s)")
    if not measured.names:
        raise InputError(f"no readable image in '{inputs.images}': all {len(skipped)} file(s) failed "
                         f"(first: '{skipped[0][0]}': {skipped[0][1]})")
    image_paths = [path for path in inputs.image_paths if path not in dict(skipped)]

    table1 = measured.table(TABLE1_METRICS)
    table2 = measured.table(TABLE2_METRICS) if labels is not None else None
    report = EvaluationReport(
        out_dir=out_dir,
        methods=list(method_functions),
        images=measured.names,
        table1=table1,
        table2=table2,
        per_image=measured.per_image,
        notes=_notes(measured, table1, table2, quick_segmenter=labels is not None and segmenter is None)
        + ([f"{len(skipped)} unreadable image(s) left out: " + ", ".join(f"`{path}`" for path, _ in skipped[:5])
            + (" ..." if len(skipped) > 5 else "")] if skipped else []),
        grid=_write_grid(measured, out_dir, grid_cell_size),
        timing=measured.timing(started),
        sources=inputs.sources(model_source, segmenter_description),
        image_paths=image_paths,
        model_method=model_name if generator is not None else None,
        skipped=skipped,
    )
    write_report(report)
    return report


__all__ = [
    "DEFAULT_BASELINES",
    "EvaluationReport",
    "ORIGINAL",
    "QUICK_SEGMENTER",
    "Summary",
    "TABLE1_METRICS",
    "TABLE2_METRICS",
    "Timer",
    "comparison_grid",
    "evaluate",
    "grid_size",
    "load_report",
    "no_reference_metrics",
]
