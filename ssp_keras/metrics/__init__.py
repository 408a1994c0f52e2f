"""The paper's metrics: no-reference image quality (Table 1) and fibre segmentation (Table 2).

* :func:`entropy`, :func:`average_gradient` (``no_reference``): histogram entropy and AvG.
* :func:`niqe` (``niqe``): Natural Image Quality Evaluator, reproducing MATLAB's ``niqe``.
* :func:`piqe`, :func:`piqe_with_masks` (``piqe``): Perception-based Image Quality Evaluator,
  reproducing MATLAB's ``piqe``.
* :func:`segmentation_metrics` (``segmentation``): AUC, accuracy, sensitivity, specificity,
  precision (the paper's "FDR" column), Dice, G-mean and Cohen's kappa.

Beside them, for the quality benchmark (``benchmarks/quality.py``): full-reference measures against
a known clean image, :func:`psnr`, :func:`ssim` and the detail measures (``full_reference``), and
the illumination measures :func:`non_uniformity` and ``border_band`` (``illumination``).

The paper's image metrics take ``uint8`` or float-in-[0, 1] images, gray ``[H, W]`` /
``[H, W, 1]`` or RGB ``[H, W, 3]``, and work on the 8-bit luma (:func:`to_luma8`).
"""

from ssp_keras.metrics.full_reference import psnr, ssim
from ssp_keras.metrics.illumination import non_uniformity
from ssp_keras.metrics.niqe import niqe
from ssp_keras.metrics.no_reference import average_gradient, entropy, to_luma8
from ssp_keras.metrics.piqe import PIQEResult, piqe, piqe_with_masks
from ssp_keras.metrics.segmentation import METRIC_NAMES, segmentation_metrics

__all__ = [
    "METRIC_NAMES",
    "PIQEResult",
    "average_gradient",
    "entropy",
    "niqe",
    "non_uniformity",
    "piqe",
    "piqe_with_masks",
    "psnr",
    "segmentation_metrics",
    "ssim",
    "to_luma8",
]
