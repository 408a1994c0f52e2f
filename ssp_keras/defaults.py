"""The one home of the models' hyperparameter defaults and rules, in plain Python (no TensorFlow).

keras-hub style, the model constructors own their hyperparameters: `SSPGenerator`,
`PatchDiscriminator`, `SSPNet` and `CSNet` take their keyword defaults from the mappings below and
check their arguments with the rules below. The sections of `ssp_keras.config.SSPNetConfig` take
the same mappings as field defaults and the same rules in ``validate``, so a configuration is a
validated, serialisable view of constructor arguments and no default or rule is written twice.

Nothing here imports TensorFlow or Keras: the command line validates a configuration before
TensorFlow loads (seconds), with the messages the constructors would give.

A rule is a function of one value returning ``None`` when the value is fine, else the complaint
("must be ..., got ..."); `check` turns the first complaint into a ``ValueError`` naming the field.
"""

from __future__ import annotations

import math
import numbers
import types
from typing import Any, Callable, Mapping, Optional, Sequence

# ------------------------------------------------------------------------------------- choices
#: Image channels every network accepts: gray or RGB.
CHANNEL_COUNTS = (1, 3)
DEFAULT_CHANNELS = 1
NORMALIZATIONS = ("instance", "batch", "none")
PADDINGS = ("mirror", "zero")
ENCODER_BLOCKS = ("bottleneck", "basic")
ADVERSARIAL_CRITERIA = ("lsgan", "bce")
#: The paper's Table 3 ablation: which terms of L_SP each loss variant uses.
LOSS_VARIANT_TERMS = types.MappingProxyType({
    "gan": frozenset(),
    "gan+iu": frozenset({"illumination"}),
    "gan+te": frozenset({"structure"}),
    "gan+sp": frozenset({"illumination", "structure"}),
})
LOSS_VARIANTS = tuple(LOSS_VARIANT_TERMS)
#: The generator downsamples five times: its inputs (training crops) are multiples of this.
#: (`ssp_keras.inference.enhance.PAD_MULTIPLE` pads to it; tests/test_defaults.py checks they agree.)
GENERATOR_SIZE_MULTIPLE = 2**5

# ------------------------------------------------------------------------------------- defaults
#: `SSPGenerator` (and ``config.generator``): the paper's ResNet-50 encoder U-Net.
GENERATOR = types.MappingProxyType({
    "channels": DEFAULT_CHANNELS,
    "encoder_block": "bottleneck",
    "encoder_stages": (3, 4, 6, 3),
    "encoder_widths": (64, 128, 256, 512),
    "stem_width": 64,
    "decoder_widths": (256, 128, 64, 32, 16),
    "normalization": "instance",
    "padding": "mirror",
    "output_skip": True,
})
#: `PatchDiscriminator` (and ``config.discriminator``): the paper's PatchGAN.
DISCRIMINATOR = types.MappingProxyType({
    "channels": DEFAULT_CHANNELS,
    "num_layers": 3,
    "base_width": 64,
    "normalization": "instance",
})
#: `SSPNet`'s loss settings (and ``config.loss``): the paper's weights, StillGAN's patches and noise.
LOSS = types.MappingProxyType({
    "variant": "gan+sp",
    "adversarial": "lsgan",
    "lambda1": 0.6,
    "lambda2": 0.4,
    "alpha": 5.1,
    "beta": 1.0,
    "iu_patch_sizes": (48, 96),
    "ssim_window": 11,
    "ssim_sigma": 1.5,
    "structure_noise": 0.01,
    "identity_weight": 0.0,
    "history_pool_size": 0,
    "denoising_noise": 0.0,
})
#: `RestorationDegradation` (and ``config.degradation``): what G's LQ input goes through in training.
#: Every probability is 0 by default (the paper has no such model); the ranges are the shipped
#: model's (models/ccmid-lite/config.json turns the probabilities on).
DEGRADATION = types.MappingProxyType({
    "blur_probability": 0.0,
    "blur_sigma": (0.5, 2.0),
    "defocus_share": 0.3,
    "defocus_radius": (1.0, 3.0),
    "contrast_probability": 0.0,
    "contrast": (0.6, 1.0),
    "noise_probability": 0.0,
    "shot_noise": (0.0, 0.04),
    "read_noise": (0.0, 0.01),
})
#: `CSNet`, the evaluation's fibre segmenter: CS-Net's widths 32..512, four poolings, reduction 8.
CSNET = types.MappingProxyType({
    "channels": DEFAULT_CHANNELS,
    "base_width": 32,
    "depth": 4,
    "attention_reduction": 8,
})

# ------------------------------------------------------------------------------------- rules
Rule = Callable[[Any], Optional[str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def one_of(choices: Sequence[Any]) -> Rule:
    return lambda value: None if value in choices else f"must be one of {list(choices)}, got {value!r}"


def positive_int(value: Any) -> Optional[str]:
    return None if _is_int(value) and value > 0 else f"must be a positive integer, got {value!r}"


def int_at_least(minimum: int) -> Rule:
    def rule(value):
        return positive_int(value) or (None if value >= minimum else f"must be at least {minimum}, got {value!r}")

    return rule


def non_negative_int(value: Any) -> Optional[str]:
    return None if _is_int(value) and value >= 0 else f"must be an integer >= 0, got {value!r}"


def odd_positive_int(value: Any) -> Optional[str]:
    return positive_int(value) or (None if value % 2 == 1 else f"must be odd, got {value!r}")


def non_negative_number(value: Any) -> Optional[str]:
    return None if _is_number(value) and value >= 0 else f"must be a finite number >= 0, got {value!r}"


def positive_number(value: Any) -> Optional[str]:
    return None if _is_number(value) and value > 0 else f"must be a finite number > 0, got {value!r}"


def boolean(value: Any) -> Optional[str]:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def optional_boolean(value: Any) -> Optional[str]:
    return None if value in (None, True, False) else f"must be true, false or null, got {value!r}"


def integer(value: Any) -> Optional[str]:
    return None if _is_int(value) else f"must be an integer, got {value!r}"


def number_in(low: float, high: float, high_included: bool = False) -> Rule:
    """A finite number in ``[low, high)`` (``[low, high]`` with ``high_included``)."""
    interval = f"[{low}, {high}{']' if high_included else ')'}"

    def rule(value):
        inside = _is_number(value) and low <= value and (value <= high if high_included else value < high)
        return None if inside else f"must be a number in {interval}, got {value!r}"

    return rule


def optional(rule: Rule) -> Rule:
    """``rule``, or None (null)."""
    return lambda value: None if value is None else rule(value)


def multiple_of(multiple: int, reason: str) -> Rule:
    def rule(value):
        problem = positive_int(value)
        if problem or value % multiple == 0:
            return problem
        return f"must be a multiple of {multiple} ({reason}), got {value!r}"

    return rule


def number_range(low: float, high: float, low_open: bool = False) -> Rule:
    """A ``(low_value, high_value)`` pair of finite numbers with ``low <= low_value <= high_value <= high``
    (``low < low_value`` with ``low_open``)."""

    def rule(value):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        if not isinstance(value, tuple) or len(value) != 2 or not all(_is_number(item) for item in value):
            return f"must be a [low, high] pair of numbers in {interval}, got {value!r}"
        first, second = value
        inside = (low < first if low_open else low <= first) and first <= second <= high
        return None if inside else f"must be a [low, high] pair with low <= high, in {interval}, got {list(value)}"

    return rule


def positive_ints(length: Optional[int] = None) -> Rule:
    """A non-empty tuple of positive integers (of ``length`` entries when given)."""

    def rule(value):
        if not isinstance(value, tuple) or not value:
            return f"must be a non-empty list of positive integers, got {value!r}"
        if length is not None and len(value) != length:
            return f"must have {length} entries, got {len(value)}"
        return next((positive_int(item) for item in value if positive_int(item)), None)

    return rule


GENERATOR_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "channels": one_of(CHANNEL_COUNTS),
    "encoder_block": one_of(ENCODER_BLOCKS),
    "encoder_stages": positive_ints(4),
    "encoder_widths": positive_ints(4),
    "stem_width": positive_int,
    "decoder_widths": positive_ints(5),
    "normalization": one_of(NORMALIZATIONS),
    "padding": one_of(PADDINGS),
    "output_skip": boolean,
    "sync_batch_norm": optional_boolean,
})
DISCRIMINATOR_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "channels": one_of(CHANNEL_COUNTS),
    "num_layers": int_at_least(2),
    "base_width": positive_int,
    "normalization": one_of(NORMALIZATIONS),
    "sync_batch_norm": optional_boolean,
})
LOSS_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "variant": one_of(LOSS_VARIANTS),
    "adversarial": one_of(ADVERSARIAL_CRITERIA),
    "lambda1": non_negative_number,
    "lambda2": non_negative_number,
    "alpha": non_negative_number,
    "beta": non_negative_number,
    "iu_patch_sizes": positive_ints(),
    "ssim_window": odd_positive_int,
    "ssim_sigma": positive_number,
    "structure_noise": non_negative_number,
    "identity_weight": non_negative_number,
    "history_pool_size": non_negative_int,
    "denoising_noise": number_in(0, 0.25, high_included=True),
})
DEGRADATION_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "blur_probability": number_in(0, 1, high_included=True),
    "blur_sigma": number_range(0, 10, low_open=True),
    "defocus_share": number_in(0, 1, high_included=True),
    "defocus_radius": number_range(0, 10, low_open=True),
    "contrast_probability": number_in(0, 1, high_included=True),
    "contrast": number_range(0, 1, low_open=True),
    "noise_probability": number_in(0, 1, high_included=True),
    "shot_noise": number_range(0, 0.25),
    "read_noise": number_range(0, 0.25),
})
CSNET_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "channels": one_of(CHANNEL_COUNTS),
    "base_width": positive_int,
    "depth": positive_int,
    "attention_reduction": positive_int,
})


def check(rules: Mapping[str, Rule], values: Mapping[str, Any], where: Callable[[str], str]) -> None:
    """Raises ``ValueError("<where(name)>: <complaint>")`` for the first value that breaks its rule.

    ``values`` may hold names without a rule (they are not checked); ``where`` says how the error
    names a field, e.g. ``lambda name: f"config field 'generator.{name}'"``.
    """
    for name, value in values.items():
        rule = rules.get(name)
        problem = rule(value) if rule is not None else None
        if problem:
            raise ValueError(f"{where(name)}: {problem}")


def check_arguments(owner: str, rules: Mapping[str, Rule], values: Mapping[str, Any]) -> None:
    """`check` for a constructor: errors read ``"SSPGenerator argument 'stem_width': must be ..."``."""
    check(rules, values, lambda name: f"{owner} argument '{name}'")
