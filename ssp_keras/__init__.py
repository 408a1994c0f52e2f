"""ssp-keras: SSP-Net, a Siamese structure-preserving GAN for unpaired medical image enhancement.

The package is laid out by concern:

* ``ssp_keras.config``: the one configuration object and its presets.
* ``ssp_keras.defaults``: the models' hyperparameter defaults and rules (read by constructors and config).
* ``ssp_keras.networks``: the generator (ResNet encoder U-Net) and the PatchGAN discriminator.
* ``ssp_keras.losses``: adversarial, illumination-uniformity and structure losses.
* ``ssp_keras.training``: the ``SSPNet`` model, learning-rate schedule, callbacks and trainer.
* ``ssp_keras.data``: image reading, the ``tf.data`` pipeline and the synthetic generator.
* ``ssp_keras.inference``: enhancing arrays and files at any size.
* ``ssp_keras.serving``: SavedModel export and the TensorFlow Serving client.
* ``ssp_keras.metrics``: the paper's no-reference and segmentation metrics, full-reference
  (PSNR, SSIM, detail) and illumination measures.
* ``ssp_keras.segmentation``: the CS-Net fibre segmenter (network, loss, training, inference).
* ``ssp_keras.evaluation``: classical baselines, evaluation reports and the quality benchmark's protocol.
* ``ssp_keras.cli``: the ``ssp-net`` command line.
* ``ssp_keras.runtime``: the CPU settings (oneDNN, tcmalloc) the command applies before TensorFlow loads.
"""

__version__ = "0.1.0"

from ssp_keras.config import SSPNetConfig, preset  # noqa: E402
from ssp_keras.pretrained import load_pretrained  # noqa: E402

__all__ = ["SSPNetConfig", "SSPNet", "build_sspnet", "enhance_array", "load_generator", "load_pretrained", "preset"]

# The Keras-heavy names load on first use, so `import ssp_keras` (and `ssp-net --help`) stays fast.
_LAZY = {
    "SSPNet": "ssp_keras.training.model",
    "build_sspnet": "ssp_keras.training.model",
    "enhance_array": "ssp_keras.inference.enhance",
    "load_generator": "ssp_keras.inference.loading",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ssp_keras' has no attribute {name!r}")
