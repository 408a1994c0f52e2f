"""Pixel-wise segmentation metrics of the paper's Table 2 (fibre maps against manual labels).

:func:`segmentation_metrics` compares a probability (or any score) map with a binary label,
optionally only inside a field-of-view mask, and returns:

* ``auc``: area under the ROC curve of the raw scores, computed exactly from ranks (the
  Mann-Whitney statistic; tied scores count one half), which equals
  ``sklearn.metrics.roc_auc_score``;
* at a threshold (``score >= threshold`` is foreground, default 0.5): ``accuracy``,
  ``sensitivity`` (recall, TP / (TP + FN)), ``specificity`` (TN / (TN + FP)), ``precision``
  (TP / (TP + FP)), ``dice`` (2 TP / (2 TP + FP + FN)), ``g_mean`` = sqrt(sensitivity *
  specificity) and ``kappa`` (Cohen's, against chance agreement from the marginals).

The paper (and CS-Net's evaluation) has a column "FDR" whose values, near 0.97, can only be
1 - false discovery rate: that is precision, and it is reported here under that name.

Undefined values are NaN, never an exception: with no foreground in the label, ``sensitivity`` and
``auc`` are NaN (and ``g_mean``); with no background, ``specificity`` and ``auc``; with nothing
predicted as foreground, ``precision``; with neither labelled nor predicted foreground, ``dice``; and
``kappa`` when chance agreement is 1 (label and prediction both constant and equal).
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
from scipy.stats import rankdata

from ssp_keras.errors import InputError

METRIC_NAMES = ("auc", "accuracy", "sensitivity", "specificity", "precision", "dice", "g_mean", "kappa")


def _as_map(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    # A trailing channel of one ([H, W, 1]) is the same map as [H, W].
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 0 or array.size == 0:
        raise InputError(f"{name}: expected a non-empty map, got shape {array.shape}")
    return array


def _as_binary(values, name: str) -> np.ndarray:
    array = _as_map(values, name)
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.number)) or not np.all((array == 0) | (array == 1)):
        raise InputError(
            f"{name}: expected a binary map (bool, or numbers that are all 0 or 1); "
            f"convert it first, e.g. `{name} > 0` for a 0/255 image"
        )
    return array.astype(bool)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def rank_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Exact ROC AUC of 1-D ``scores`` for the boolean ``positives``; NaN if a class is missing.

    Average ranks make tied scores count one half, as the trapezoidal ROC of scikit-learn.
    """
    positive_count = int(positives.sum())
    negative_count = positives.size - positive_count
    if positive_count == 0 or negative_count == 0:
        return float("nan")
    ranks = rankdata(scores, method="average")
    positive_rank_sum = float(ranks[positives].sum())
    mann_whitney_u = positive_rank_sum - positive_count * (positive_count + 1) / 2.0
    return mann_whitney_u / (positive_count * negative_count)


def segmentation_metrics(
    scores,
    label,
    field_of_view: Optional[np.ndarray] = None,
    threshold: float = 0.5,
) -> Dict[str, float]:
    """Pixel-wise metrics of a score map against a binary label.

    Args:
        scores: foreground probabilities (or any real scores), any shape (e.g. ``[H, W]``,
            ``[H, W, 1]`` or a stack ``[N, H, W]`` to pool several images); finite.
        label: binary ground truth of the same shape: bool, or numbers all 0 or 1.
        field_of_view: optional binary mask of the same shape; only its pixels are counted.
        threshold: ``scores >= threshold`` is predicted foreground.

    Returns:
        ``{"auc", "accuracy", "sensitivity", "specificity", "precision", "dice", "g_mean",
        "kappa"}`` as floats; NaN where undefined (see the module docstring).

    Raises:
        InputError: shapes differ, a map is empty, scores are NaN/Inf, a label or mask is not
            binary, or the field of view selects no pixel.
    """
    scores = _as_map(scores, "scores")
    label = _as_binary(label, "label")
    if scores.dtype == bool:  # hard predictions: foreground scores 1
        scores = scores.astype(np.float64)
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise InputError(f"scores: expected real numbers, got dtype {scores.dtype}")
    if scores.shape != label.shape:
        raise InputError(f"scores and label differ in shape: {scores.shape} vs {label.shape}")
    if not np.all(np.isfinite(scores)):
        raise InputError("scores: contains NaN or Inf values")
    if field_of_view is not None:
        field_of_view = _as_binary(field_of_view, "field_of_view")
        if field_of_view.shape != scores.shape:
            raise InputError(
                f"field_of_view and scores differ in shape: {field_of_view.shape} vs {scores.shape}"
            )
        if not field_of_view.any():
            raise InputError("field_of_view: the mask selects no pixel")
        scores, label = scores[field_of_view], label[field_of_view]
    else:
        scores, label = scores.ravel(), label.ravel()

    predicted = scores >= threshold
    # Python ints: products of pixel counts overflow no fixed-width type.
    true_positive = int(np.count_nonzero(predicted & label))
    false_positive = int(np.count_nonzero(predicted & ~label))
    false_negative = int(np.count_nonzero(~predicted & label))
    true_negative = label.size - true_positive - false_positive - false_negative
    total = label.size

    sensitivity = _ratio(true_positive, true_positive + false_negative)
    specificity = _ratio(true_negative, true_negative + false_positive)
    accuracy = (true_positive + true_negative) / total
    # Chance agreement from the marginals of label and prediction.
    chance = (
        (true_positive + false_positive) * (true_positive + false_negative)
        + (false_negative + true_negative) * (false_positive + true_negative)
    ) / total**2
    kappa = (accuracy - chance) / (1.0 - chance) if chance < 1.0 else float("nan")

    return {
        "auc": rank_auc(scores, label),
        "accuracy": accuracy,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": _ratio(true_positive, true_positive + false_positive),
        "dice": _ratio(2 * true_positive, 2 * true_positive + false_positive + false_negative),
        "g_mean": math.sqrt(sensitivity * specificity),
        "kappa": kappa,
    }
