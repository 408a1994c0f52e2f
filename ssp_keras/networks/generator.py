"""The SSP-Net generator G: a ResNet-encoder U-Net (SPEC section 2).

One network enhances both the low-quality and the high-quality images (the "Siamese" branches
share these weights).

Encoder: a ResNet (bottleneck blocks for the ResNet-50 family, basic blocks for ResNet-18) whose
stem max-pool is replaced by a stride-2 3x3 convolution, to keep fine texture. Skip features at
1/2 (stem), 1/4, 1/8 and 1/16 of the input, bottleneck at 1/32.

Decoder: five stages, each a x2 bilinear upsampling, concatenation with the matching skip
feature (none at full resolution, or the input image with ``full_resolution_skip``) and two 3x3
conv-norm-ReLU; a last 3x3 convolution maps to the image channels. With ``output_skip`` (the
default) that map is added to the input's logit before the sigmoid, so G starts as the identity
and learns a correction; outputs are in [0, 1] either way.

Normalisation is per sample (instance norm) by default, so an image's enhancement does not depend
on the rest of the batch and is the same in training and inference; every convolution pads its
input symmetrically by mirroring, so no band forms at the border (Keras' "same" zero padding pads
only bottom and right at stride 2).

Input: float32 ``[N, H, W, C]`` in [0, 1], H and W multiples of 32, C = 1 or 3.
Output: float32 ``[N, H, W, C]`` in [0, 1] (float32 also under mixed precision).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Sequence

import keras
import numpy as np

from ssp_keras.defaults import (
    DEFAULT_CHANNELS, ENCODER_BLOCKS, GeneratorConfig, check_arguments, image_channels, rules_of,
)
from ssp_keras.networks.layers import (
    DEFAULT_WIDE_INPUT_RATIO,
    BilinearUpsampling2D,
    InputSkip,
    InstanceNormalization,
    MirrorPadding2D,
    conv_norm_act,
)

__all__ = [
    "ENCODER_BLOCKS", "SSPGenerator", "build_generator", "grow_generator", "interpolate_generators",
    "load_encoder_weights",
]


def _residual_block(x, width: int, strides: int, block: str, layer, name: str, dtype):
    """A ResNet v1.5 block: bottleneck (1x1, 3x3 strided, 1x1 x4) or basic (3x3 strided, 3x3)."""
    out_width = width * 4 if block == "bottleneck" else width
    shortcut = x
    if strides != 1 or x.shape[-1] != out_width:
        shortcut = layer(x, out_width, 1, strides, f"{name}_shortcut", activation=None)
    if block == "bottleneck":
        y = layer(x, width, 1, 1, f"{name}_1")
        y = layer(y, width, 3, strides, f"{name}_2")
        y = layer(y, out_width, 1, 1, f"{name}_3", activation=None)
    else:
        y = layer(x, width, 3, strides, f"{name}_1")
        y = layer(y, out_width, 3, 1, f"{name}_2", activation=None)
    y = keras.layers.Add(name=f"{name}_add", dtype=dtype)([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out", dtype=dtype)(y)


def _build_encoder(channels, block, stages, widths, stem_width, layer, dtype) -> keras.Model:
    inputs = keras.Input((None, None, channels), name="encoder_input")
    x = layer(inputs, stem_width, 7, 2, "stem")
    skips = [x]  # 1/2
    # The stride-2 3x3 convolution that replaces ResNet's max-pool ("texture preservation").
    x = layer(x, stem_width, 3, 2, "stem_down")
    for stage, (blocks, width) in enumerate(zip(stages, widths)):
        for index in range(blocks):
            strides = 2 if (index == 0 and stage > 0) else 1
            x = _residual_block(x, width, strides, block, layer, f"stage{stage + 1}_block{index + 1}", dtype)
        skips.append(x)  # 1/4, 1/8, 1/16, then the 1/32 bottleneck
    encoder = keras.Model(inputs, skips, name="encoder")
    encoder.dtype_policy = keras.dtype_policies.get(dtype)  # as in SSPGenerator: Functional ignores dtype
    return encoder


@keras.saving.register_keras_serializable(package="ssp_keras")
class SSPGenerator(keras.Model):
    """The SSP-Net generator. Every hyperparameter is a constructor argument (see module doc).

    Args:
        channels: image channels, 1 (grayscale) or 3 (RGB).
        encoder_block ... output_skip: the architecture, the fields of
            `ssp_keras.defaults.GeneratorConfig` (``config.generator``), which gives their meaning.
        sync_batch_norm: synchronise batch statistics across replicas (``"batch"`` only).
        fused_kernels: use the library's fused CPU kernels (fused batch norm, `WideInputConv2D`);
            same results and weights, so it is a choice of this process, not saved in model files
            (benchmarks switch them off to measure them).
        dtype: the dtype policy of every layer (``"float32"``, ``"bfloat16"``, ``"mixed_bfloat16"``,
            ...; None: Keras' global policy); the output layer computes in float32 whatever it is.
    """

    def __init__(
        self,
        channels: int = DEFAULT_CHANNELS,
        encoder_block: str = GeneratorConfig.encoder_block,
        encoder_stages: Sequence[int] = GeneratorConfig.encoder_stages,
        encoder_widths: Sequence[int] = GeneratorConfig.encoder_widths,
        stem_width: int = GeneratorConfig.stem_width,
        decoder_widths: Sequence[int] = GeneratorConfig.decoder_widths,
        normalization: str = GeneratorConfig.normalization,
        padding: str = GeneratorConfig.padding,
        output_skip: bool = GeneratorConfig.output_skip,
        full_resolution_skip: bool = GeneratorConfig.full_resolution_skip,
        sync_batch_norm: bool = False,
        fused_kernels: bool = True,
        dtype=None,
        **kwargs,
    ):
        encoder_stages = tuple(int(v) for v in encoder_stages)
        encoder_widths = tuple(int(v) for v in encoder_widths)
        decoder_widths = tuple(int(v) for v in decoder_widths)
        check_arguments(type(self).__name__, {**rules_of(GeneratorConfig), "channels": image_channels}, locals())

        def layer(x, filters, kernel_size, strides, name, activation="relu"):
            return conv_norm_act(
                x, filters, kernel_size, strides, normalization, name, activation=activation, padding=padding,
                synchronized=bool(sync_batch_norm), fused=bool(fused_kernels),
                wide_input_ratio=DEFAULT_WIDE_INPUT_RATIO if fused_kernels else 0, dtype=dtype,
            )

        # === Functional graph ===
        inputs = keras.Input((None, None, channels), name="images")
        encoder = _build_encoder(channels, encoder_block, encoder_stages, encoder_widths, stem_width, layer, dtype)
        *skips, x = encoder(inputs)
        for stage, width in enumerate(decoder_widths):
            x = BilinearUpsampling2D(name=f"decoder{stage + 1}_up", dtype=dtype)(x)
            skip_index = len(skips) - 1 - stage
            skip = skips[skip_index] if skip_index >= 0 else (inputs if full_resolution_skip else None)
            if skip is not None:
                x = keras.layers.Concatenate(name=f"decoder{stage + 1}_concat", dtype=dtype)([x, skip])
            x = layer(x, width, 3, 1, f"decoder{stage + 1}_a")
            x = layer(x, width, 3, 1, f"decoder{stage + 1}_b")
        if padding == "mirror":
            x = MirrorPadding2D(1, name="to_image_pad", dtype=dtype)(x)
        # float32 output whatever the dtype policy: losses and images are computed in float32.
        to_image = keras.layers.Conv2D(
            channels, 3, padding="valid" if padding == "mirror" else "same", dtype="float32", name="to_image",
            # Zero-initialised under output_skip, so the untrained G is the identity.
            kernel_initializer="zeros" if output_skip else "glorot_uniform",
        )(x)
        if output_skip:
            outputs = InputSkip(name="output_skip")([inputs, to_image])
        else:
            outputs = keras.layers.Activation("sigmoid", dtype="float32", name="to_image_sigmoid")(to_image)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # A functional model ignores a dtype argument (keras-hub's Backbone sets it the same way),
        # so that get_config saves, and from_config restores, the policy its layers were built with.
        self.dtype_policy = keras.dtype_policies.get(dtype)

        # === Config ===
        self.channels = channels
        self.encoder_block = encoder_block
        self.encoder_stages = encoder_stages
        self.encoder_widths = encoder_widths
        self.stem_width = stem_width
        self.decoder_widths = decoder_widths
        self.normalization = normalization
        self.padding = padding
        self.output_skip = bool(output_skip)
        self.full_resolution_skip = bool(full_resolution_skip)
        self.sync_batch_norm = bool(sync_batch_norm)
        self.fused_kernels = bool(fused_kernels)

    @property
    def encoder(self) -> keras.Model:
        return self.get_layer("encoder")

    def get_config(self):
        config = super().get_config()  # name, trainable, dtype
        config.update({
            "channels": self.channels,
            "encoder_block": self.encoder_block,
            "encoder_stages": list(self.encoder_stages),
            "encoder_widths": list(self.encoder_widths),
            "stem_width": self.stem_width,
            "decoder_widths": list(self.decoder_widths),
            "normalization": self.normalization,
            "padding": self.padding,
            "output_skip": self.output_skip,
            "full_resolution_skip": self.full_resolution_skip,
            "sync_batch_norm": self.sync_batch_norm,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # A choice of the loading process, not of the file: files saved before it left the config hold it.
        config.pop("fused_kernels", None)
        if "padding" not in config:
            # Saved before padding and output_skip existed (zero padding, plain sigmoid output).
            config.update(padding="zero", output_skip=False)
        return cls(**config)


def build_generator(
    config, sync_batch_norm: bool | None = None, name: str = "generator", fused_kernels: bool = True, dtype=None
) -> SSPGenerator:
    """The generator described by an ``SSPNetConfig`` (its ``generator`` and ``data`` sections).

    ``sync_batch_norm`` overrides ``config.generator.sync_batch_norm`` (the trainer passes the
    resolved value: on when training on more than one replica). ``fused_kernels``, ``dtype``: see
    `SSPGenerator`.
    """
    arguments = dataclasses.asdict(config.generator)
    encoder_weights = arguments.pop("encoder_weights")
    if sync_batch_norm is not None:
        arguments["sync_batch_norm"] = sync_batch_norm
    arguments["sync_batch_norm"] = bool(arguments["sync_batch_norm"])
    generator = SSPGenerator(
        channels=config.data.channels, **arguments, fused_kernels=fused_kernels, dtype=dtype, name=name
    )
    if encoder_weights:
        load_encoder_weights(generator, encoder_weights)
    return generator


def grow_generator(source: SSPGenerator, target: SSPGenerator) -> None:
    """Copies ``source``'s weights into ``target``, a grown copy of its architecture, so that
    ``target`` computes what ``source`` computes until training moves it.

    ``target`` may differ from ``source`` only by ``full_resolution_skip`` turned on and by decoder
    stages at least as wide (``decoder_widths``). Weights that exist in both are copied; the
    weights a new channel sends into a following convolution start at 0, and those it receives
    keep ``target``'s fresh initialisation, so a new channel changes nothing at first but gets a
    gradient (a new channel whose incoming and outgoing weights were both 0 never would).
    Raises ValueError for any other difference.
    """
    old_widths, new_widths = tuple(source.decoder_widths), tuple(target.decoder_widths)
    fixed = lambda model: {key: value for key, value in model.get_config().items()  # noqa: E731
                           if key not in ("name", "trainable", "dtype", "sync_batch_norm",
                                          "full_resolution_skip", "decoder_widths")}
    if (fixed(source) != fixed(target) or len(old_widths) != len(new_widths)
            or any(new < old for old, new in zip(old_widths, new_widths))
            or (source.full_resolution_skip and not target.full_resolution_skip)):
        raise ValueError("grow_generator: the target must be the source's architecture with the full-resolution "
                         "skip added or decoder stages widened, nothing else")
    saved = {weight.path: keras.ops.convert_to_numpy(weight) for weight in source.weights}
    for weight in target.weights:
        old = saved.get(weight.path)
        if old is None or old.ndim != len(weight.shape):
            raise ValueError(f"grow_generator: {weight.path} has no counterpart in the source")
        if old.shape == tuple(weight.shape):
            weight.assign(old)
            continue
        value = keras.ops.convert_to_numpy(weight).copy()
        if old.ndim == 4:  # a kernel [h, w, in, out]
            rows = _old_input_rows(weight.path, old.shape[2], old_widths, new_widths)
            value[:, :, np.setdiff1d(np.arange(value.shape[2]), rows), :] = 0.0
            value[:, :, rows, : old.shape[3]] = old
        else:  # a normalisation's scale or offset, or a bias: one value per output channel
            value[: old.shape[0]] = old
        weight.assign(value)


def interpolate_generators(start: SSPGenerator, end: SSPGenerator, weight: float) -> SSPGenerator:
    """A new generator of ``end``'s architecture whose weights are ``start + weight * (end - start)``.

    Weight-space interpolation of a fine-tune (WiSE-FT: Wortsman et al., "Robust fine-tuning of
    zero-shot models", CVPR 2022): ``start`` is the generator that ``end`` was fine-tuned from, so
    the two lie in one basin and the weights in between trade what the fine-tune gained (for
    ``ccmid-lite``: denoising) against what it cost (a plain frame's own texture). ``start`` may be
    narrower, as `grow_generator` allows: it is grown first, its new channels receiving ``end``'s
    incoming weights and sending 0, so weight 0 computes ``start``'s output and weight 1 ``end``'s.

    weight: in [0, 1]. Raises ValueError for another weight or for architectures that
    `grow_generator` refuses.
    """
    weight = float(weight)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"interpolate_generators: weight must be in [0, 1], got {weight}")
    result = SSPGenerator(**end.get_config(), fused_kernels=end.fused_kernels)
    result.set_weights(end.get_weights())
    grow_generator(start, result)  # start's weights where they exist; end's incoming ones for new channels
    for mixed, target in zip(result.weights, end.weights):
        value = keras.ops.convert_to_numpy(mixed)
        mixed.assign(value + weight * (keras.ops.convert_to_numpy(target) - value))
    return result


def _old_input_rows(path: str, count: int, old_widths, new_widths) -> np.ndarray:
    """Where the ``count`` input channels of the source's kernel ``path`` sit in the grown one.

    A decoder stage's first convolution (past the first) takes the previous stage's output, then
    the skip feature: channels added to the previous stage come between the two; everywhere else,
    and for the image added by a full-resolution skip, new input channels come last.
    """
    match = re.fullmatch(r"decoder(\d+)_a_conv/kernel", path)
    rows = np.arange(count)
    if match and int(match.group(1)) > 1:
        previous = int(match.group(1)) - 2  # index of the previous stage in decoder_widths
        added = new_widths[previous] - old_widths[previous]
        rows = np.where(rows < old_widths[previous], rows, rows + added)
    return rows


def load_encoder_weights(generator: SSPGenerator, path: str) -> None:
    """Initialises the encoder from a local file (no download ever happens here).

    Accepted files:

    * ``*.weights.h5`` saved from an SSP-Net encoder (``generator.encoder.save_weights``);
    * Keras' ImageNet ResNet-50 weights (``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``),
      for the ``paper`` architecture: convolutions and batch norms are copied in order; the
      stride-2 conv that replaces the max-pool keeps its fresh initialisation, and for grayscale
      inputs the stem kernel is summed over the RGB channels.
    """
    import os

    if not os.path.isfile(path):
        raise ValueError(f"encoder weights file not found: {path}")
    if path.endswith(".weights.h5"):
        generator.encoder.load_weights(path)
        return
    if generator.encoder_block != "bottleneck" or generator.encoder_stages != (3, 4, 6, 3) or (
        generator.encoder_widths != (64, 128, 256, 512) or generator.stem_width != 64
    ):
        raise ValueError("ImageNet ResNet-50 weights fit only the paper's encoder (ResNet-50 widths and stages)")
    resnet = keras.applications.ResNet50(include_top=False, weights=path, input_shape=(None, None, 3))

    norms = (keras.layers.BatchNormalization, InstanceNormalization)

    def _convs_and_norms(model, skip=()):
        return [
            layer
            for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D,) + norms) and layer.name not in skip
        ]

    # Both lists sorted by role (stage, block, part; shortcut first) so that layers pair up.
    ours = sorted(
        _convs_and_norms(generator.encoder, skip=("stem_down_conv", "stem_down_norm")),
        key=lambda layer: _layer_order(layer.name),
    )
    theirs = sorted(_convs_and_norms(resnet), key=lambda layer: _layer_order(layer.name))
    if len(ours) != len(theirs):
        raise ValueError(f"cannot map {len(theirs)} ResNet-50 layers onto {len(ours)} encoder layers")
    for mine, source in zip(ours, theirs):
        weights = source.get_weights()
        if isinstance(mine, keras.layers.Conv2D) and weights[0].shape[2] == 3 and generator.channels == 1:
            weights = [weights[0].sum(axis=2, keepdims=True)] + weights[1:]
        if isinstance(mine, keras.layers.Conv2D) and not mine.use_bias:
            weights = weights[:1]
        if isinstance(mine, InstanceNormalization):
            weights = weights[:2]  # gamma and beta; instance norm has no moving statistics
        mine.set_weights(weights)


def _layer_order(name: str):
    """(stage, block, part, conv-before-norm) of an encoder layer, ours or keras.applications'.

    keras.applications names ``conv1_conv``, ``conv3_block2_0_conv`` (0 = shortcut); ours
    ``stem_conv``, ``stage2_block2_shortcut_conv``, ``stage2_block2_1_norm``.
    """
    kind = 0 if name.endswith("conv") else 1
    if name.startswith(("conv1_", "stem_")):
        return (0, 0, 0, kind)
    match = re.match(r"(?:conv|stage)(\d+)_block(\d+)_(\w+?)_(?:conv|bn|norm)$", name)
    if match is None:
        raise ValueError(f"unexpected encoder layer name {name!r}")
    stage = int(match.group(1)) - (1 if name.startswith("conv") else 0)
    part = match.group(3)
    return (stage, int(match.group(2)), 0 if part in ("0", "shortcut") else int(part), kind)
