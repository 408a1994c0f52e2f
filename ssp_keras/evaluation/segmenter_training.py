"""Training the fibre segmenter.

Moved to `ssp_keras.segmentation.training`; this module re-exports its names for one release.
"""

from ssp_keras.segmentation.training import (  # noqa: F401
    SEGMENTER_INFO_FILE,
    CropSampler,
    SegmenterTrainResult,
    SegmenterTrainingOptions,
    crop_dataset,
    save_segmenter,
    synthetic_training_set,
    train_segmenter,
    training_set,
)
