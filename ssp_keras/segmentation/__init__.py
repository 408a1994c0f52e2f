"""The fibre segmenter of the paper's downstream check: CS-Net, training and inference.

The paper measures how much enhancement helps a downstream task by segmenting nerve fibres in
the enhanced images with CS-Net (L. Mou et al., MICCAI 2019) trained on high-quality images with
fibre labels, and scoring the maps against manual labels (Table 2, :mod:`ssp_keras.evaluation.report`).

One module per concern; this one gathers their public names (import from here or from them):

* :mod:`ssp_keras.segmentation.csnet`: the network, :class:`CSNet` and its attention layers;
* :mod:`ssp_keras.segmentation.loss`: CS-Net's loss, :func:`mse_dice_loss`;
* :mod:`ssp_keras.segmentation.inference`: :func:`load_segmenter`, and :func:`segment`
  for images of any size (padding, tiling);
* :mod:`ssp_keras.segmentation.training`: :func:`train_segmenter` and its
  :class:`SegmenterTrainingOptions`, the crop sampler and the synthetic training set;
* :mod:`ssp_keras.data.labels`: images and label files matched by name (stem).
"""

from ssp_keras.data.labels import index_by_stem, load_labelled_folders, match_by_stem, read_binary_mask, stem
from ssp_keras.segmentation.csnet import CSNet, ChannelAffinity, SpatialAffinity
from ssp_keras.segmentation.loss import mse_dice_loss
from ssp_keras.segmentation.inference import (
    SEGMENT_TILE_OVERLAP,
    SEGMENT_TILE_PIXELS,
    SEGMENT_TILE_SIZE,
    SEGMENTER_FILE,
    load_segmenter,
    resolve_segmenter_path,
    segment,
    size_multiple,
)
from ssp_keras.segmentation.training import (
    SEGMENTER_INFO_FILE,
    CropSampler,
    SegmenterTrainingOptions,
    SegmenterTrainResult,
    synthetic_training_set,
    train_segmenter,
)

__all__ = [
    "CSNet",
    "ChannelAffinity",
    "CropSampler",
    "SEGMENTER_FILE",
    "SEGMENTER_INFO_FILE",
    "SEGMENT_TILE_OVERLAP",
    "SEGMENT_TILE_PIXELS",
    "SEGMENT_TILE_SIZE",
    "SegmenterTrainResult",
    "SegmenterTrainingOptions",
    "SpatialAffinity",
    "index_by_stem",
    "load_labelled_folders",
    "load_segmenter",
    "match_by_stem",
    "mse_dice_loss",
    "read_binary_mask",
    "resolve_segmenter_path",
    "segment",
    "size_multiple",
    "stem",
    "synthetic_training_set",
    "train_segmenter",
]
