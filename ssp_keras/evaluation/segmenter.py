"""The fibre segmenter: CS-Net, training and inference.

Moved to `ssp_keras.segmentation`; this module re-exports its names for one release.
"""

from ssp_keras.segmentation import (  # noqa: F401
    SEGMENTER_FILE,
    SEGMENTER_INFO_FILE,
    SEGMENT_TILE_OVERLAP,
    SEGMENT_TILE_PIXELS,
    SEGMENT_TILE_SIZE,
    CSNet,
    ChannelAffinity,
    CropSampler,
    SegmenterTrainResult,
    SegmenterTrainingOptions,
    SpatialAffinity,
    index_by_stem,
    load_labelled_folders,
    load_segmenter,
    match_by_stem,
    mse_dice_loss,
    read_binary_mask,
    resolve_segmenter_path,
    segment,
    size_multiple,
    stem,
    synthetic_training_set,
    train_segmenter,
)
