"""CS-Net, the fibre segmenter of the paper's downstream check: the network.

The paper measures how much enhancement helps a downstream task by segmenting nerve fibres in
the enhanced images with CS-Net (L. Mou et al., "CS-Net: Channel and Spatial Attention Network
for Curvilinear Structure Segmentation", MICCAI 2019) trained on high-quality images with fibre
labels, and scoring the maps against manual labels (Table 2, :mod:`ssp_keras.evaluation.report`).

Network (:class:`CSNet`), as the authors' 2-D release:

* encoder: ``depth + 1`` residual blocks (3x3 conv-BN-ReLU twice, plus a 1x1 convolution of the
  input, summed, ReLU), widths ``base_width * 2**level``, 2x2 max-pooling between them;
* bottleneck: a spatial attention block (query 1x3 and key 3x1 convolutions to ``width /
  reduction`` channels, softmax affinity over all ``h*w`` positions, 1x1 value convolution) and a
  channel attention block (softmax over ``max(affinity) - affinity`` of the channel Gram matrix),
  each ``gamma * attended + x`` with ``gamma`` learnt from 0; their outputs are summed and added to
  the bottleneck feature (``x + SAB(x) + CAB(x)``, exactly the release's fusion);
* decoder: 2x2 stride-2 transposed convolutions, concatenation with the encoder feature of the
  same resolution, two 3x3 conv-BN-ReLU; a 1x1 convolution and a sigmoid give the fibre
  probability.

Input: float32 ``[N, H, W, channels]`` in [0, 1], H and W multiples of ``2**depth``
(`ssp_keras.segmentation.inference.segment` pads any size). Output: float32
``[N, H, W, 1]`` probabilities in [0, 1].
"""

from __future__ import annotations

import keras
import numpy as np

from ssp_keras.defaults import CSNET, CSNET_RULES, check_arguments
from ssp_keras.networks.layers import conv_norm_act

#: CS-Net's network defaults, by their former names.
DEFAULT_BASE_WIDTH = CSNET["base_width"]
DEFAULT_DEPTH = CSNET["depth"]
DEFAULT_ATTENTION_REDUCTION = CSNET["attention_reduction"]


@keras.saving.register_keras_serializable(package="ssp_keras")
class SpatialAffinity(keras.layers.Layer):
    """The affinity step of CS-Net's spatial attention block.

    Inputs ``[query, key, value, features]``: query and key ``[N, h, w, c']``, value and features
    ``[N, h, w, C]``. Output ``gamma * A(value) + features``, ``[N, h, w, C]``, where
    ``A[i, j] = softmax_j(query_i . key_j)`` mixes the values of all positions ``j`` into position
    ``i``. ``gamma`` starts at 0, so the block starts as the identity.
    """

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(1,), initializer="zeros", name="gamma")

    def call(self, inputs):
        query, key, value, features = inputs
        shape = keras.ops.shape(features)
        height, width, channels = shape[1], shape[2], features.shape[-1]
        query = keras.ops.reshape(query, (-1, height * width, query.shape[-1]))
        key = keras.ops.reshape(key, (-1, height * width, key.shape[-1]))
        value = keras.ops.reshape(value, (-1, height * width, channels))
        affinity = keras.ops.softmax(keras.ops.matmul(query, keras.ops.transpose(key, (0, 2, 1))), axis=-1)
        attended = keras.ops.reshape(keras.ops.matmul(affinity, value), (-1, height, width, channels))
        return self.gamma * attended + features

    def compute_output_shape(self, input_shape):
        return input_shape[3]


@keras.saving.register_keras_serializable(package="ssp_keras")
class ChannelAffinity(keras.layers.Layer):
    """CS-Net's channel attention block: ``gamma * (x mixed across channels) + x``.

    Input and output ``[N, h, w, C]``. The channel Gram matrix ``G = X^T X`` (``X``: ``[h*w, C]``)
    becomes ``softmax(max_row(G) - G)`` (so weakly correlated channels get the larger weights, as
    in the release and DANet), which re-mixes the channels. ``gamma`` starts at 0.
    """

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(1,), initializer="zeros", name="gamma")

    def call(self, features):
        shape = keras.ops.shape(features)
        height, width, channels = shape[1], shape[2], features.shape[-1]
        flat = keras.ops.reshape(features, (-1, height * width, channels))
        gram = keras.ops.matmul(keras.ops.transpose(flat, (0, 2, 1)), flat)  # [N, C, C]
        affinity = keras.ops.softmax(keras.ops.max(gram, axis=-1, keepdims=True) - gram, axis=-1)
        mixed = keras.ops.matmul(flat, keras.ops.transpose(affinity, (0, 2, 1)))  # [N, h*w, C]
        return self.gamma * keras.ops.reshape(mixed, (-1, height, width, channels)) + features

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_bn_relu(x, width: int, kernel_size, name: str):
    """CS-Net's 3x3 (or 1x3, 3x1) conv-BN-ReLU, stride 1, with Keras' "same" zero padding as the
    release. The library's CPU kernel for wide inputs (`WideInputConv2D`) is for square kernels only."""
    square = isinstance(kernel_size, int)
    return conv_norm_act(
        x, width, kernel_size, 1, "batch", name, padding="zero", **({} if square else {"wide_input_ratio": 0})
    )


def _residual_encoder_block(x, width: int, name: str):
    """CS-Net's ResEncoder: relu(BN-ReLU(conv3x3(BN-ReLU(conv3x3(x)))) + conv1x1(x))."""
    shortcut = keras.layers.Conv2D(width, 1, padding="same", name=f"{name}_shortcut")(x)
    y = _conv_bn_relu(x, width, 3, f"{name}_a")
    y = _conv_bn_relu(y, width, 3, f"{name}_b")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _affinity_attention(x, reduction: int, name: str):
    """Spatial and channel attention of the bottleneck feature ``x``; returns x + SAB(x) + CAB(x)."""
    width = x.shape[-1]
    inner = max(1, width // reduction)
    # Query and key look along rows (1x3) and columns (3x1): elongated fibres, elongated kernels.
    query = _conv_bn_relu(x, inner, (1, 3), f"{name}_query")
    key = _conv_bn_relu(x, inner, (3, 1), f"{name}_key")
    value = keras.layers.Conv2D(width, 1, name=f"{name}_value")(x)
    spatial = SpatialAffinity(name=f"{name}_spatial")([query, key, value, x])
    channel = ChannelAffinity(name=f"{name}_channel")(x)
    return keras.layers.Add(name=f"{name}_fuse")([x, spatial, channel])


@keras.saving.register_keras_serializable(package="ssp_keras")
class CSNet(keras.Model):
    """CS-Net fibre segmenter (see the module docstring); every hyperparameter is an argument,
    with its default and rule in `ssp_keras.defaults.CSNET` and ``CSNET_RULES``.

    Args:
        channels: image channels, 1 (gray) or 3 (RGB).
        base_width: width of the first encoder block; level ``l`` has ``base_width * 2**l``.
        depth: number of 2x2 poolings (CS-Net: 4); inputs must be multiples of ``2**depth``.
        attention_reduction: query/key width of the spatial attention is ``width // reduction``.

    Call: float32 ``[N, H, W, channels]`` in [0, 1] -> ``[N, H, W, 1]`` fibre probabilities.
    """

    def __init__(
        self,
        channels: int = CSNET["channels"],
        base_width: int = CSNET["base_width"],
        depth: int = CSNET["depth"],
        attention_reduction: int = CSNET["attention_reduction"],
        **kwargs,
    ):
        arguments = dict(channels=channels, base_width=base_width, depth=depth, attention_reduction=attention_reduction)
        # NumPy integers are integers here (sizes often come from arrays).
        arguments = {name: int(value) if isinstance(value, np.integer) else value for name, value in arguments.items()}
        check_arguments(type(self).__name__, CSNET_RULES, arguments)
        channels, base_width, depth, attention_reduction = arguments.values()

        # === Functional graph ===
        inputs = keras.Input((None, None, channels), name="images")
        skips = []
        x = inputs
        for level in range(depth):
            x = _residual_encoder_block(x, base_width * 2**level, f"encoder{level}")
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = _residual_encoder_block(x, base_width * 2**depth, f"encoder{depth}")
        x = _affinity_attention(x, attention_reduction, "attention")
        for level in reversed(range(depth)):
            width = base_width * 2**level
            x = keras.layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}")(x)
            x = keras.layers.Concatenate(name=f"concat{level}")([skips[level], x])
            x = _conv_bn_relu(x, width, 3, f"decoder{level}_a")
            x = _conv_bn_relu(x, width, 3, f"decoder{level}_b")
        outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="probability")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.channels = channels
        self.base_width = base_width
        self.depth = depth
        self.attention_reduction = attention_reduction

    @property
    def size_multiple(self) -> int:
        """Heights and widths the network accepts are multiples of this (``2**depth``)."""
        return 2**self.depth

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "channels": self.channels,
            "base_width": self.base_width,
            "depth": self.depth,
            "attention_reduction": self.attention_reduction,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


__all__ = ["CSNet", "ChannelAffinity", "SpatialAffinity"]
