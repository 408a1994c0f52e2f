"""The one home of the models' hyperparameter defaults and rules, in plain Python (no TensorFlow).

keras-hub style, the model constructors own their hyperparameters. Each model's hyperparameters
are the fields of one section dataclass below (`GeneratorConfig`, `DiscriminatorConfig`,
`LossConfig`, `DegradationConfig`), each field written once with its default and its rule
(`setting`). The constructors (`SSPGenerator`, `PatchDiscriminator`, `SSPNet`,
`RestorationDegradation`) take their keyword defaults from the section's class attributes and
check their arguments with its rules; `ssp_keras.config.SSPNetConfig` holds the same sections, so a
configuration is a validated, serialisable set of constructor arguments, passed on as
``Constructor(**dataclasses.asdict(section))``. `CSNet`'s defaults and rules are the mappings
`CSNET` and `CSNET_RULES`.

Nothing here imports TensorFlow or Keras: the command line validates a configuration before
TensorFlow loads (seconds), with the messages the constructors would give.

A rule is a function of one value returning ``None`` when the value is fine, else the complaint
("must be ..., got ..."); `check` turns the first complaint into a ``ValueError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

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
#: The generator downsamples five times: its inputs (training crops, padded images) are multiples of this.
GENERATOR_SIZE_MULTIPLE = 2**5

# ------------------------------------------------------------------------------------- rules
Rule = Callable[[Any], Optional[str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def one_of(choices: Sequence[Any]) -> Rule:
    return lambda value: None if value in choices else f"must be one of {list(choices)}, got {value!r}"


def image_channels(value: Any) -> Optional[str]:
    """The rule of every network's ``channels``: `CHANNEL_COUNTS`."""
    return one_of(CHANNEL_COUNTS)(value)


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


#: Seeds every random generator used here accepts (NumPy's, hence Keras' ``set_random_seed``).
SEED_RANGE = (0, 2**32 - 1)


def seed(value: Any) -> Optional[str]:
    low, high = SEED_RANGE
    return None if _is_int(value) and low <= value <= high else f"must be an integer in [0, 2**32 - 1], got {value!r}"


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


#: `CSNet`, the evaluation's fibre segmenter: CS-Net's widths 32..512, four poolings, reduction 8.
CSNET = types.MappingProxyType({
    "channels": DEFAULT_CHANNELS,
    "base_width": 32,
    "depth": 4,
    "attention_reduction": 8,
})
CSNET_RULES: Mapping[str, Rule] = types.MappingProxyType({
    "channels": image_channels,
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


# ------------------------------------------------------------------------------------- sections
def setting(default: Any, rule: Rule) -> Any:
    """A section field: its default and, beside it, the rule every value of it must follow."""
    return dataclasses.field(default=default, metadata={"rule": rule})


def rules_of(section) -> Mapping[str, Rule]:
    """``{field name: rule}`` of a section class or instance (the fields made with `setting`)."""
    return {field.name: field.metadata["rule"] for field in dataclasses.fields(section) if "rule" in field.metadata}


def field_name(prefix: str) -> Callable[[str], str]:
    """How errors name a field of the config section ``prefix``: ``config field 'generator.stem_width'``."""
    return lambda name: f"config field '{prefix}.{name}'" if prefix else f"config field '{name}'"


class Section:
    """A section of `ssp_keras.config.SSPNetConfig`: a dataclass whose fields are `setting`\\ s.

    The sections below are the model constructors' hyperparameters: each constructor takes its
    keyword defaults from the section's class attributes (``LossConfig.alpha``) and checks its
    arguments with `check_arguments` and ``rules_of(section)``; ``build_*`` functions pass a
    section to its constructor as ``**dataclasses.asdict(section)``.
    """

    def validate(self, prefix: str) -> None:
        check(rules_of(self), {field.name: getattr(self, field.name) for field in dataclasses.fields(self)},
              field_name(prefix))


def _weights_file(value: Any) -> Optional[str]:
    ok = value is None or (isinstance(value, str) and value != "")
    return None if ok else "must be a path to a local weights file or null"


def _model_source(value: Any) -> Optional[str]:
    ok = value is None or (isinstance(value, str) and value != "")
    return None if ok else "must be a saved generator (a .keras file, a run folder or a pretrained name) or null"


@dataclasses.dataclass
class GeneratorConfig(Section):
    """`SSPGenerator`, the U-Net generator G: ResNet encoder, five-stage decoder (SPEC section 2).

    Its image channels come from ``data.channels``.

    encoder_block: ``bottleneck`` (ResNet-50 family, output width 4x) or ``basic`` (ResNet-18).
    encoder_stages: blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
    encoder_widths: inner width of each stage (ResNet-50: 64, 128, 256, 512).
    stem_width: width of the 7x7 stem and of the stride-2 3x3 conv replacing its max-pool.
    decoder_widths: five widths, from the 1/16 stage up to full resolution.
    normalization: ``instance`` (per sample, the default: an image's enhancement never depends on
      the rest of the batch), ``batch`` (ResNet's; blotches full frames when trained on crops) or
      ``none``.
    padding: ``mirror`` (symmetric mirror padding before each convolution) or ``zero`` (Keras'
      "same", which pads only bottom/right at stride 2 and leaves a band along those borders).
    output_skip: G outputs sigmoid(logit(input) + correction), starting as the identity.
    full_resolution_skip: the last decoder stage also sees the input image at full resolution
      (off in the paper's U-Net, whose finest skip is the stem's, at 1/2). Without it the
      correction is computed from features at half resolution or coarser and cannot see a
      pixel's noise, so the output skip passes noise through unchanged (measured: 103% of added
      noise kept; issue #21).
    sync_batch_norm: synchronise batch-norm statistics across replicas; ``None`` (config only)
      means on exactly when training on more than one replica.
    encoder_weights: a local weights file the encoder starts from (config only; `build_generator`).
    """

    encoder_block: str = setting("bottleneck", one_of(ENCODER_BLOCKS))
    encoder_stages: Tuple[int, ...] = setting((3, 4, 6, 3), positive_ints(4))
    encoder_widths: Tuple[int, ...] = setting((64, 128, 256, 512), positive_ints(4))
    stem_width: int = setting(64, positive_int)
    decoder_widths: Tuple[int, ...] = setting((256, 128, 64, 32, 16), positive_ints(5))
    normalization: str = setting("instance", one_of(NORMALIZATIONS))
    padding: str = setting("mirror", one_of(PADDINGS))
    output_skip: bool = setting(True, boolean)
    full_resolution_skip: bool = setting(False, boolean)
    sync_batch_norm: Optional[bool] = setting(None, optional_boolean)
    encoder_weights: Optional[str] = setting(None, _weights_file)

    def validate(self, prefix: str = "generator") -> None:
        super().validate(prefix)


@dataclasses.dataclass
class DiscriminatorConfig(Section):
    """`PatchDiscriminator`, the PatchGAN discriminator D (SPEC section 2); channels from ``data.channels``.

    num_layers: number of 4x4 convolutions, the last producing the logit map (paper: 3).
    base_width: width of the first convolution, doubled at each following one.
    normalization: normalisation of the middle convolutions.
    """

    num_layers: int = setting(3, int_at_least(2))
    base_width: int = setting(64, positive_int)
    normalization: str = setting("instance", one_of(NORMALIZATIONS))

    def validate(self, prefix: str = "discriminator") -> None:
        super().validate(prefix)


@dataclasses.dataclass
class LossConfig(Section):
    """`SSPNet`'s loss settings, SPEC section 3: the paper's weights, StillGAN's patches and noise.

    variant: the paper's Table 3 ablation; ``gan+sp`` is the full SSP-Net.
    adversarial: the adversarial criterion, ``lsgan`` or ``bce``.
    lambda1, lambda2: weights of the LQ and HQ adversarial branches.
    alpha: weight of the structure-preserving loss L_SP = L_IU + beta * L_TE.
    iu_patch_sizes: L_IU patch sizes in pixels (StillGAN's 48 and 96: H/8 and H/4 of a 384-pixel
      frame). Pixels, not fractions of the crop, so shading is judged at frame scale whatever the
      training crop; crops must be at least as large as the largest patch.
    ssim_window, ssim_sigma: the Gaussian window of the structure term.
    structure_noise: std of the shared Gaussian noise added to both images of the structure term
      (StillGAN's 0.01); without it a flat output scores as perfect structure (see losses.structure).
    identity_weight: optional L1 between y and G(y) (0 = off).
    history_pool_size: optional pool of past fakes for D (0 = off; CycleGAN uses 50).
    denoising_noise: largest standard deviation (at mid-grey, [0, 1] units; 0 = off, the paper) of
      signal-dependent noise added to G's LQ input in training while the structure term still
      compares G's output with the noise-free LQ, so G learns to remove such noise instead of
      reproducing it (see `SSPNet`). Not the same as ``data.lq_noise``, whose noise both sides see.
    shading_consistency: weight of an optional term comparing G's output on its LQ input shaded
      once more by a random smooth field s with its output on the input as it was (0 = off, the
      paper; `ssp_keras.losses.consistency`): G((s x)~) should have G(x~)'s pattern and x's mean
      level ((s x)~: s x through the restoration degradation with draws of its own). The paper's losses judge how even G's output is, not at what level: G may even a
      shaded frame around its darkened mean. This term asks that shading change nothing, so G
      lifts a shaded region to the level of the unshaded frame (issue #21). It costs one more G
      pass over the LQ batch.
    shading_consistency_strength: strength of those fields (`ssp_keras.utils.shading.shading_field`,
      as ``data.lq_shading``), in [0, 1].
    restoration_consistency: weight of an optional term asking G's output on the degraded crop x~
      to match a frozen teacher's output T(x) on the crop before degradation, pixel by pixel
      relative to T(x)'s local level (0 = off, the paper;
      `ssp_keras.losses.consistency.restoration_consistency_loss`): a noise-free answer for G to
      reach, which the structure term does not give where x is dark (its C3 hides low-contrast
      noise). Needs ``restoration_teacher`` and the restoration degradation or ``denoising_noise``
      (without them x~ = x). It costs one teacher pass over the LQ batch, without gradient.
    restoration_teacher: the teacher T of ``restoration_consistency``: a saved generator (a
      ``.keras`` file, a run folder or a pretrained name such as ``ccmid-lite``), typically the
      model being fine-tuned; its weights never change (config only; `build_sspnet` loads it).
      Why a frozen teacher and not G's own G(x): asked to match its own answer, G learnt to keep
      shaded regions dark, where noise costs least (measured, issue #21).
    synthetic_restoration: weight of an optional paired term on synthetic scenes (0 = off, the
      paper; `ssp_keras.losses.restoration`): the input pipeline renders clean scenes s
      (`ssp_keras.data.synthetic`) and shades them as it shades LQ crops; G sees them degraded
      like x, s~, and is asked for s itself, pattern for pattern (G(s~) brought to s's 16-px tile
      levels, errors relative to them: the adversarial term sets the brightness of G's outputs,
      which synthetic scenes do not share). The unpaired terms never show G
      a cleaner version of its input (a real frame's own grain is in x and in T(x)), so without
      this G passes added noise through. Needs the restoration degradation or ``denoising_noise``.
      It costs one more G pass over a batch of B synthetic scenes (rendered on the CPU, ~5 ms each
      at 256 px); D never sees them.
    texture_keeping: weight of an optional term on the LQ crop without the restoration
      degradation, x (0 = off, the paper; `ssp_keras.losses.texture`): G(x) should keep x's own
      fine texture (the band x - Gaussian(x, 3 px)), brought to x's 16-px tile levels. The
      restoration terms cannot tell a real frame's own grain from added noise; this term says
      which is which, so G removes what the degradation adds and keeps the rest. It costs one
      more G pass over the LQ batch.
    """

    variant: str = setting("gan+sp", one_of(LOSS_VARIANTS))
    adversarial: str = setting("lsgan", one_of(ADVERSARIAL_CRITERIA))
    lambda1: float = setting(0.6, non_negative_number)
    lambda2: float = setting(0.4, non_negative_number)
    alpha: float = setting(5.1, non_negative_number)
    beta: float = setting(1.0, non_negative_number)
    iu_patch_sizes: Tuple[int, ...] = setting((48, 96), positive_ints())
    ssim_window: int = setting(11, odd_positive_int)
    ssim_sigma: float = setting(1.5, positive_number)
    structure_noise: float = setting(0.01, non_negative_number)
    identity_weight: float = setting(0.0, non_negative_number)
    history_pool_size: int = setting(0, non_negative_int)
    denoising_noise: float = setting(0.0, number_in(0, 0.25, high_included=True))
    shading_consistency: float = setting(0.0, non_negative_number)
    shading_consistency_strength: float = setting(0.8, number_in(0, 1, high_included=True))
    restoration_consistency: float = setting(0.0, non_negative_number)
    restoration_teacher: Optional[str] = setting(None, _model_source)
    synthetic_restoration: float = setting(0.0, non_negative_number)
    texture_keeping: float = setting(0.0, non_negative_number)

    def validate(self, prefix: str = "loss") -> None:
        super().validate(prefix)

    @property
    def use_illumination(self) -> bool:
        return "illumination" in LOSS_VARIANT_TERMS[self.variant]

    @property
    def use_structure(self) -> bool:
        return "structure" in LOSS_VARIANT_TERMS[self.variant]


@dataclasses.dataclass
class DegradationConfig(Section):
    """`RestorationDegradation`: what G's LQ input goes through in training (issue #21; off in the paper).

    Each LQ training crop is blurred, reduced in contrast and given Poisson-Gaussian noise, each
    with its own probability (0 = never, the default) and parameters drawn from ``[low, high]``;
    the structure term compares G's output with the crop before degradation, so G learns to
    restore (`ssp_keras.training.degradation.RestorationDegradation`). The ranges are the shipped
    model's (models/ccmid-lite/config.json turns the probabilities on).

    blur_probability, blur_sigma: share of crops blurred, and the Gaussian sigma in pixels.
    defocus_share, defocus_radius: share of the blurred crops given a defocus disk instead, and
      its radius in pixels.
    contrast_probability, contrast: share of crops with reduced contrast ``m + c (x - m)``, and c.
    noise_probability, shot_noise, read_noise: share of crops with noise, its shot-noise std at
      mid-grey and its signal-independent std ([0, 1] units).
    """

    blur_probability: float = setting(0.0, number_in(0, 1, high_included=True))
    blur_sigma: Tuple[float, float] = setting((0.5, 2.0), number_range(0, 10, low_open=True))
    defocus_share: float = setting(0.3, number_in(0, 1, high_included=True))
    defocus_radius: Tuple[float, float] = setting((1.0, 3.0), number_range(0, 10, low_open=True))
    contrast_probability: float = setting(0.0, number_in(0, 1, high_included=True))
    contrast: Tuple[float, float] = setting((0.6, 1.0), number_range(0, 1, low_open=True))
    noise_probability: float = setting(0.0, number_in(0, 1, high_included=True))
    shot_noise: Tuple[float, float] = setting((0.0, 0.04), number_range(0, 0.25))
    read_noise: Tuple[float, float] = setting((0.0, 0.01), number_range(0, 0.25))

    def validate(self, prefix: str = "degradation") -> None:
        super().validate(prefix)

    @property
    def active(self) -> bool:
        """Whether any degradation is ever applied."""
        return degradation_active(self)


def degradation_active(settings) -> bool:
    """Whether degradation ``settings`` (a `DegradationConfig` or a `RestorationDegradation`)
    ever degrade an image: some probability above 0."""
    return any(p > 0 for p in (settings.blur_probability, settings.contrast_probability, settings.noise_probability))
