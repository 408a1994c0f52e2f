"""The SSP-Net discriminator D: a PatchGAN (SPEC section 2).

``num_layers`` 4x4 convolutions: the first ``num_layers - 1`` of stride 2 with LeakyReLU(0.2),
those after the first normalised, widths doubling from ``base_width``; the last of stride 1
produces one logit per patch. The paper's D is ``num_layers=3``: conv(64, /2) - conv(128, /2) +
norm - conv(1). Kernels start from N(0, 0.02) as in pix2pix/CycleGAN.

Input: float32 ``[N, H, W, C]`` in [0, 1]. Output: float32 logits ``[N, H / 2^(L-1), W / 2^(L-1), 1]``.
"""

from __future__ import annotations

import dataclasses

import keras

from ssp_keras.defaults import DEFAULT_CHANNELS, DiscriminatorConfig, check_arguments, image_channels, rules_of
from ssp_keras.networks.layers import normalization as normalization_layer


@keras.saving.register_keras_serializable(package="ssp_keras")
class PatchDiscriminator(keras.Model):
    """PatchGAN discriminator. Every hyperparameter is a constructor argument.

    Args:
        channels: image channels, 1 or 3.
        num_layers, base_width, normalization: the architecture, the fields of
            `ssp_keras.defaults.DiscriminatorConfig` (``config.discriminator``), which gives their meaning.
        sync_batch_norm: synchronise batch statistics across replicas (``"batch"`` only).
        dtype: the dtype policy of every layer (None: Keras' global policy); the logits are float32.
    """

    def __init__(
        self,
        channels: int = DEFAULT_CHANNELS,
        num_layers: int = DiscriminatorConfig.num_layers,
        base_width: int = DiscriminatorConfig.base_width,
        normalization: str = DiscriminatorConfig.normalization,
        sync_batch_norm: bool = False,
        dtype=None,
        **kwargs,
    ):
        check_arguments(type(self).__name__, {**rules_of(DiscriminatorConfig), "channels": image_channels}, locals())

        init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
        inputs = keras.Input((None, None, channels), name="images")
        x = inputs
        for index in range(num_layers - 1):
            x = keras.layers.Conv2D(
                base_width * 2**index,
                4,
                strides=2,
                padding="same",
                use_bias=index == 0 or normalization == "none",
                kernel_initializer=init,
                name=f"conv{index + 1}",
                dtype=dtype,
            )(x)
            if index > 0:
                x = normalization_layer(normalization, sync_batch_norm, name=f"norm{index + 1}", dtype=dtype)(x)
            x = keras.layers.LeakyReLU(0.2, name=f"lrelu{index + 1}", dtype=dtype)(x)
        logits = keras.layers.Conv2D(
            1, 4, strides=1, padding="same", kernel_initializer=init, dtype="float32", name="logits"
        )(x)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.dtype_policy = keras.dtype_policies.get(dtype)  # as in SSPGenerator: Functional ignores dtype
        self.channels = channels
        self.num_layers = num_layers
        self.base_width = base_width
        self.normalization = normalization
        self.sync_batch_norm = bool(sync_batch_norm)

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype
        config.update({
            "channels": self.channels,
            "num_layers": self.num_layers,
            "base_width": self.base_width,
            "normalization": self.normalization,
            "sync_batch_norm": self.sync_batch_norm,
        })
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_discriminator(
    config, sync_batch_norm: bool | None = None, name: str = "discriminator", dtype=None
) -> PatchDiscriminator:
    """The discriminator described by an ``SSPNetConfig`` (``dtype``: see `PatchDiscriminator`)."""
    sync = config.generator.sync_batch_norm if sync_batch_norm is None else sync_batch_norm
    return PatchDiscriminator(
        channels=config.data.channels, **dataclasses.asdict(config.discriminator), sync_batch_norm=bool(sync),
        dtype=dtype, name=name,
    )
