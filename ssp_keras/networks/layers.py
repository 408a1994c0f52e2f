"""Building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import keras


def normalization(kind: str, synchronized: bool = False, name: str | None = None) -> keras.layers.Layer:
    """The normalisation layer named by ``kind``.

    ``batch``: batch normalisation (ResNet's); ``synchronized`` makes its statistics global across
    replicas, so a step on N replicas equals a step on one with the same global batch.
    ``instance``: per-sample, per-channel normalisation (GroupNormalization with one group per
    channel); it does not depend on the batch at all.
    ``none``: identity.
    """
    if kind == "batch":
        return keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name
        )
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if kind == "none":
        return keras.layers.Identity(name=name)
    raise ValueError(f"unknown normalization {kind!r}; choose 'batch', 'instance' or 'none'")


def conv_norm_act(
    x,
    filters: int,
    kernel_size: int,
    strides: int,
    norm: str,
    synchronized: bool,
    name: str,
    activation: str | None = "relu",
):
    """Conv (no bias when a normalisation follows) -> normalisation -> activation."""
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=norm == "none",
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = normalization(norm, synchronized, name=f"{name}_norm")(x)
    if activation is not None:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


@keras.saving.register_keras_serializable(package="ssp_keras")
class BilinearUpsampling2D(keras.layers.Layer):
    """x2 bilinear upsampling of ``[N, H, W, C]`` that also traces with unknown H and W.

    Keras 3.15's ``UpSampling2D(interpolation="bilinear")`` checks the target size in Python, which
    fails when H and W are symbolic (serving signatures and shape-generic inference functions take
    any image size); this layer computes the size from ``tf.shape`` instead. Same
    ``tf.image.resize`` call, same result.
    """

    def call(self, images):
        import tensorflow as tf

        size = tf.shape(images)[1:3] * 2
        return tf.cast(tf.image.resize(images, size, method="bilinear"), images.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else 2 * height, None if width is None else 2 * width, channels)
