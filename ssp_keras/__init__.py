"""ssp-keras: SSP-Net, a Siamese structure-preserving GAN for unpaired medical image enhancement.

The package is laid out by concern:

* ``ssp_keras.config``: the one configuration object and its presets.
* ``ssp_keras.networks``: the generator (ResNet encoder U-Net) and the PatchGAN discriminator.
* ``ssp_keras.losses``: adversarial, illumination-uniformity and structure losses.
* ``ssp_keras.training``: the ``SSPNet`` model, learning-rate schedule, callbacks and trainer.
* ``ssp_keras.data``: image reading, the ``tf.data`` pipeline and the synthetic generator.
* ``ssp_keras.inference``: enhancing arrays and files at any size.
* ``ssp_keras.serving``: SavedModel export and the TensorFlow Serving client.
* ``ssp_keras.metrics``: the paper's no-reference and segmentation metrics.
* ``ssp_keras.evaluation``: baselines, fibre segmenter and reports.
* ``ssp_keras.cli``: the ``ssp-net`` command line.
"""

__version__ = "0.1.0"

from ssp_keras.config import SSPNetConfig, preset  # noqa: E402,F401
