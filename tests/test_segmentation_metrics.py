"""Segmentation metrics against scikit-learn, plus field of view, thresholds and degenerate labels."""

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from ssp_keras.metrics import METRIC_NAMES, segmentation_metrics


def sklearn_reference(scores, label, threshold=0.5):
    predicted = scores >= threshold
    sensitivity = sk.recall_score(label, predicted)
    specificity = sk.recall_score(label, predicted, pos_label=0)
    return {
        "auc": sk.roc_auc_score(label, scores),
        "accuracy": sk.accuracy_score(label, predicted),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "precision": sk.precision_score(label, predicted),
        "dice": sk.f1_score(label, predicted),
        "g_mean": math.sqrt(sensitivity * specificity),
        "kappa": sk.cohen_kappa_score(label, predicted),
    }


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_on_random_maps_with_ties(seed):
    rng = np.random.default_rng(seed)
    label = rng.random((40, 50)) < 0.2
    # Informative scores, rounded so that many are tied (AUC must count ties as one half).
    scores = np.clip(0.35 * label + rng.random((40, 50)) * 0.7, 0, 1).round(2)
    ours = segmentation_metrics(scores, label)
    expected = sklearn_reference(scores.ravel(), label.ravel())
    assert set(ours) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(expected[name], abs=1e-12), name


def test_field_of_view_restricts_the_pixels():
    rng = np.random.default_rng(10)
    label = rng.random((30, 30)) < 0.3
    scores = rng.random((30, 30))
    field_of_view = np.zeros((30, 30), dtype=bool)
    field_of_view[5:25, 3:20] = True
    # Outside the field of view, make everything wrong: it must not matter.
    scores[~field_of_view] = np.where(label[~field_of_view], 0.0, 1.0)
    ours = segmentation_metrics(scores, label, field_of_view=field_of_view)
    expected = sklearn_reference(scores[field_of_view], label[field_of_view])
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(expected[name], abs=1e-12), name


def test_threshold_argument_and_channel_axis():
    rng = np.random.default_rng(11)
    label = (rng.random((20, 20)) < 0.5).astype(np.uint8)
    scores = rng.random((20, 20)).astype(np.float32)
    ours = segmentation_metrics(scores[..., None], label[..., None], threshold=0.3)
    expected = sklearn_reference(scores.ravel(), label.ravel(), threshold=0.3)
    for name in METRIC_NAMES:
        assert ours[name] == pytest.approx(expected[name], abs=1e-6), name


def test_perfect_prediction():
    label = np.zeros((8, 8), dtype=bool)
    label[2:5, 3:6] = True
    result = segmentation_metrics(label.astype(np.float64), label)
    for name in METRIC_NAMES:
        assert result[name] == pytest.approx(1.0), name


def test_hand_computed_confusion():
    # TP = 2, FP = 1, FN = 1, TN = 4 (n = 8).
    label = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.1, 0.3, 0.4])
    result = segmentation_metrics(scores, label)
    assert result["accuracy"] == pytest.approx(6 / 8)
    assert result["sensitivity"] == pytest.approx(2 / 3)
    assert result["specificity"] == pytest.approx(4 / 5)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["dice"] == pytest.approx(4 / 6)
    assert result["g_mean"] == pytest.approx(math.sqrt(2 / 3 * 4 / 5))
    chance = (3 * 3 + 5 * 5) / 64
    assert result["kappa"] == pytest.approx((6 / 8 - chance) / (1 - chance))
    # Positive-negative pairs ranked right: 0.9 beats 5, 0.6 beats 4 (not 0.7), 0.2 beats 2 (the 0.1s).
    assert result["auc"] == pytest.approx(11 / 15)


def test_all_negative_label_gives_nan_where_undefined():
    label = np.zeros((10, 10), dtype=bool)
    scores = np.tile([0.2, 0.7], 50).reshape(10, 10)
    result = segmentation_metrics(scores, label)
    for name in ("auc", "sensitivity", "g_mean"):
        assert math.isnan(result[name]), name
    assert result["specificity"] == pytest.approx(50 / 100)  # the 0.7s are false positives
    assert result["precision"] == 0.0 and result["dice"] == 0.0
    assert result["kappa"] == pytest.approx(0.0)


def test_nothing_labelled_nor_predicted():
    result = segmentation_metrics(np.zeros((4, 4)), np.zeros((4, 4), dtype=bool))
    assert result["accuracy"] == 1.0 and result["specificity"] == 1.0
    for name in ("auc", "sensitivity", "precision", "dice", "g_mean", "kappa"):
        assert math.isnan(result[name]), name


def test_all_positive_label():
    result = segmentation_metrics(np.full((4, 4), 0.8), np.ones((4, 4), dtype=bool))
    assert result["sensitivity"] == 1.0 and result["precision"] == 1.0 and result["dice"] == 1.0
    assert math.isnan(result["specificity"]) and math.isnan(result["auc"])


@pytest.mark.parametrize(
    "scores, label, kwargs, message",
    [
        (np.zeros((4, 4)), np.zeros((4, 5)), {}, "shape"),
        (np.full((4, 4), np.nan), np.zeros((4, 4)), {}, "NaN"),
        (np.zeros((4, 4)), np.full((4, 4), 255), {}, "binary"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"field_of_view": np.zeros((4, 4), dtype=bool)}, "no pixel"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"field_of_view": np.ones((3, 4), dtype=bool)}, "shape"),
        (np.zeros((0,)), np.zeros((0,)), {}, "non-empty"),
    ],
)
def test_bad_input_raises_value_error(scores, label, kwargs, message):
    with pytest.raises(ValueError, match=message):
        segmentation_metrics(scores, label, **kwargs)
