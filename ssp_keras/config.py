"""The one configuration object of ssp-keras.

`SSPNetConfig` is a tree of small dataclasses (generator, discriminator, losses, training, data).
The command line, the model, the data pipeline and the trainer all read their settings from it.
It round-trips through JSON and YAML, and every field is validated: a bad value raises
`ValueError` naming the field (for example ``generator.encoder_stages``).

Where defaults live: the network and loss sections (generator, discriminator, loss) are views of
constructor arguments of `SSPGenerator`, `PatchDiscriminator` and `SSPNet`; their defaults and
rules live once, in `ssp_keras.defaults`, which both the constructors and these dataclasses read.
The training and data sections' defaults and rules (no constructor takes them) live here.

Presets:

* ``paper``: the network and settings of the paper (ResNet-50 bottleneck encoder, 384x384 crops,
  batch 4 per domain, Adam (0.5, 0.9) / (0.9, 0.999), warm-up 3e-5 -> 1e-4 over 500 iterations
  then halved every 15 epochs, lambda1 = 0.6, lambda2 = 0.4, alpha = 5.1, beta = 1.0).
* ``lite``: the same family with ResNet-18-style basic blocks and narrow layers, for CPUs, tests
  and the demo (128x128 crops).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Optional, Tuple

from ssp_keras import defaults
from ssp_keras.defaults import (  # noqa: F401  (the choices, importable from here as before)
    ADVERSARIAL_CRITERIA,
    DEGRADATION,
    DEGRADATION_RULES,
    DISCRIMINATOR,
    DISCRIMINATOR_RULES,
    ENCODER_BLOCKS,
    GENERATOR,
    GENERATOR_RULES,
    LOSS,
    LOSS_RULES,
    LOSS_VARIANT_TERMS,
    LOSS_VARIANTS,
    NORMALIZATIONS,
    PADDINGS,
)

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
#: Keras backends that train SSP-Net (`ssp_keras.runtime.select_keras_backend`).
BACKENDS = ("tensorflow", "jax")


def _field(prefix: str) -> Callable[[str], str]:
    """How errors name a field of the section ``prefix``: ``config field 'generator.stem_width'``."""
    return lambda name: f"config field '{prefix}.{name}'" if prefix else f"config field '{name}'"


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"config field '{field}': {message}")


def _section_values(section) -> dict:
    return {field.name: getattr(section, field.name) for field in dataclasses.fields(section)}


@dataclasses.dataclass
class GeneratorConfig:
    """The U-Net generator G: ResNet encoder, five-stage decoder (SPEC section 2).

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
    sync_batch_norm: synchronise batch-norm statistics across replicas; ``None`` means on
      exactly when training on more than one replica.
    """

    encoder_block: str = GENERATOR["encoder_block"]
    encoder_stages: Tuple[int, ...] = GENERATOR["encoder_stages"]
    encoder_widths: Tuple[int, ...] = GENERATOR["encoder_widths"]
    stem_width: int = GENERATOR["stem_width"]
    decoder_widths: Tuple[int, ...] = GENERATOR["decoder_widths"]
    normalization: str = GENERATOR["normalization"]
    padding: str = GENERATOR["padding"]
    output_skip: bool = GENERATOR["output_skip"]
    sync_batch_norm: Optional[bool] = None
    encoder_weights: Optional[str] = None

    def validate(self, prefix: str = "generator") -> None:
        defaults.check(GENERATOR_RULES, _section_values(self), _field(prefix))
        if self.encoder_weights is not None:
            _require(
                isinstance(self.encoder_weights, str) and self.encoder_weights != "",
                f"{prefix}.encoder_weights",
                "must be a path to a local weights file or null",
            )


@dataclasses.dataclass
class DiscriminatorConfig:
    """The PatchGAN discriminator D (SPEC section 2).

    num_layers: number of 4x4 convolutions, the last producing the logit map (paper: 3).
    base_width: width of the first convolution, doubled at each following one.
    normalization: normalisation of the middle convolutions.
    """

    num_layers: int = DISCRIMINATOR["num_layers"]
    base_width: int = DISCRIMINATOR["base_width"]
    normalization: str = DISCRIMINATOR["normalization"]

    def validate(self, prefix: str = "discriminator") -> None:
        defaults.check(DISCRIMINATOR_RULES, _section_values(self), _field(prefix))


@dataclasses.dataclass
class LossConfig:
    """Weights and options of the losses of SPEC section 3.

    variant: the paper's Table 3 ablation; ``gan+sp`` is the full SSP-Net.
    lambda1, lambda2: weights of the LQ and HQ adversarial branches.
    alpha: weight of the structure-preserving loss L_SP = L_IU + beta * L_TE.
    iu_patch_sizes: L_IU patch sizes in pixels (StillGAN's 48 and 96: H/8 and H/4 of a 384-pixel
      frame). Pixels, not fractions of the crop, so shading is judged at frame scale whatever the
      training crop; crops must be at least as large as the largest patch.
    structure_noise: std of the shared Gaussian noise added to both images of the structure term
      (StillGAN's 0.01); without it a flat output scores as perfect structure (see losses.structure).
    identity_weight: optional L1 between y and G(y) (0 = off).
    history_pool_size: optional pool of past fakes for D (0 = off; CycleGAN uses 50).
    denoising_noise: largest standard deviation (at mid-grey, [0, 1] units; 0 = off, the paper) of
      signal-dependent noise added to G's LQ input in training while the structure term still
      compares G's output with the noise-free LQ, so G learns to remove such noise instead of
      reproducing it (see `SSPNet`). Not the same as ``data.lq_noise``, whose noise both sides see.
    """

    variant: str = LOSS["variant"]
    adversarial: str = LOSS["adversarial"]
    lambda1: float = LOSS["lambda1"]
    lambda2: float = LOSS["lambda2"]
    alpha: float = LOSS["alpha"]
    beta: float = LOSS["beta"]
    iu_patch_sizes: Tuple[int, ...] = LOSS["iu_patch_sizes"]
    ssim_window: int = LOSS["ssim_window"]
    ssim_sigma: float = LOSS["ssim_sigma"]
    structure_noise: float = LOSS["structure_noise"]
    identity_weight: float = LOSS["identity_weight"]
    history_pool_size: int = LOSS["history_pool_size"]
    denoising_noise: float = LOSS["denoising_noise"]

    def validate(self, prefix: str = "loss") -> None:
        defaults.check(LOSS_RULES, _section_values(self), _field(prefix))

    @property
    def use_illumination(self) -> bool:
        return "illumination" in LOSS_VARIANT_TERMS[self.variant]

    @property
    def use_structure(self) -> bool:
        return "structure" in LOSS_VARIANT_TERMS[self.variant]


@dataclasses.dataclass
class DegradationConfig:
    """The restoration degradation model of G's LQ input in training (issue #21; off in the paper).

    Each LQ training crop is blurred, reduced in contrast and given Poisson-Gaussian noise, each
    with its own probability (0 = never, the default) and parameters drawn from ``[low, high]``;
    the structure term compares G's output with the crop before degradation, so G learns to
    restore (`ssp_keras.training.degradation.RestorationDegradation`).

    blur_probability, blur_sigma: share of crops blurred, and the Gaussian sigma in pixels.
    defocus_share, defocus_radius: share of the blurred crops given a defocus disk instead, and
      its radius in pixels.
    contrast_probability, contrast: share of crops with reduced contrast ``m + c (x - m)``, and c.
    noise_probability, shot_noise, read_noise: share of crops with noise, its shot-noise std at
      mid-grey and its signal-independent std ([0, 1] units).
    """

    blur_probability: float = DEGRADATION["blur_probability"]
    blur_sigma: Tuple[float, float] = DEGRADATION["blur_sigma"]
    defocus_share: float = DEGRADATION["defocus_share"]
    defocus_radius: Tuple[float, float] = DEGRADATION["defocus_radius"]
    contrast_probability: float = DEGRADATION["contrast_probability"]
    contrast: Tuple[float, float] = DEGRADATION["contrast"]
    noise_probability: float = DEGRADATION["noise_probability"]
    shot_noise: Tuple[float, float] = DEGRADATION["shot_noise"]
    read_noise: Tuple[float, float] = DEGRADATION["read_noise"]

    def validate(self, prefix: str = "degradation") -> None:
        defaults.check(DEGRADATION_RULES, _section_values(self), _field(prefix))


@dataclasses.dataclass
class TrainConfig:
    """Optimisation, schedule and run settings (SPEC section 4).

    batch_size: images per domain per replica (the global batch is this times the replicas).
    steps_per_epoch: optimiser iterations per epoch (``None``: one pass over the larger folder).
    lr_*: linear warm-up from lr_warmup_start to lr_peak over lr_warmup_steps iterations, then
      halved every lr_halving_epochs epochs.
    strategy: ``auto`` (mirrored over >= 2 GPUs), ``none``, ``mirrored`` or ``multiworker``.
    cpu_replicas: split the CPU into this many logical devices (0 = no split), for testing the
      multi-replica paths without GPUs.
    precision: Keras dtype policy (``float32``, ``mixed_float16``, ``mixed_bfloat16``) or ``auto``:
      ``mixed_bfloat16`` on a CPU with native bfloat16 (AVX-512 BF16 / AMX) and no GPU, where it is
      1.3-1.7x faster with the same quality, ``float32`` elsewhere (`ssp_keras.precision`).
    backend: the Keras backend that trains, ``tensorflow`` or ``jax`` (whose step is always
      XLA-compiled, whatever ``jit_compile``); a run may resume on the other one (its checkpoints
      hold the same variables either way).
    """

    batch_size: int = 4
    epochs: int = 200
    steps_per_epoch: Optional[int] = None
    lr_warmup_start: float = 3e-5
    lr_peak: float = 1e-4
    lr_warmup_steps: int = 500
    lr_halving_epochs: int = 15
    generator_beta_1: float = 0.5
    generator_beta_2: float = 0.9
    discriminator_beta_1: float = 0.9
    discriminator_beta_2: float = 0.999
    seed: int = 0
    precision: str = "auto"
    jit_compile: bool = False
    strategy: str = "auto"
    cpu_replicas: int = 0
    image_grid_size: int = 4
    backend: str = "tensorflow"

    def validate(self, prefix: str = "train") -> None:
        defaults.check(_TRAIN_RULES, _section_values(self), _field(prefix))


_TRAIN_RULES = {
    "batch_size": defaults.positive_int,
    "epochs": defaults.positive_int,
    "steps_per_epoch": defaults.optional(defaults.positive_int),
    "lr_warmup_start": defaults.non_negative_number,
    "lr_peak": defaults.positive_number,
    "lr_warmup_steps": defaults.non_negative_int,
    "lr_halving_epochs": defaults.positive_int,
    **{name: defaults.number_in(0, 1) for name in (
        "generator_beta_1", "generator_beta_2", "discriminator_beta_1", "discriminator_beta_2")},
    "seed": defaults.seed,
    "precision": defaults.one_of(PRECISIONS),
    "jit_compile": defaults.boolean,
    "strategy": defaults.one_of(STRATEGIES),
    "cpu_replicas": defaults.non_negative_int,
    "image_grid_size": defaults.positive_int,
    "backend": defaults.one_of(BACKENDS),
}


@dataclasses.dataclass
class DataConfig:
    """Training images (SPEC section 5).

    image_size: side of the square random training crops (a multiple of 32,
      `defaults.GENERATOR_SIZE_MULTIPLE`); images smaller than
      this are resized up first.
    channels: 1 (grayscale, the default for confocal microscopy) or 3 (RGB).
    flip: random horizontal and vertical flips.
    brightness_jitter, contrast_jitter: strength of the mild colour-space jitter (0 = off).
    lq_shading: strength (0 = off, at most 1) of random smooth illumination fields multiplied into
      LQ training crops: an off-centre vignette times a linear ramp, different for every crop, so
      G learns to remove shading wherever it lies rather than the one vignette of its data set.
    lq_noise: largest standard deviation (0 = off, at most 0.25; at mid-grey, in [0, 1] units) of
      the signal-dependent noise added to LQ training crops after shading, a random level per crop,
      so G learns to remove noise rather than amplify it where it brightens dark regions.
    cache: keep decoded images in memory; ``None`` decides from the folder's size.
    """

    image_size: int = 384
    channels: int = defaults.DEFAULT_CHANNELS
    flip: bool = True
    brightness_jitter: float = 0.05
    contrast_jitter: float = 0.1
    lq_shading: float = 0.5
    lq_noise: float = 0.0
    cache: Optional[bool] = None
    cache_limit_mb: int = 2048

    def validate(self, prefix: str = "data") -> None:
        defaults.check(_DATA_RULES, _section_values(self), _field(prefix))


_DATA_RULES = {
    "image_size": defaults.multiple_of(defaults.GENERATOR_SIZE_MULTIPLE, "the generator downsamples 5 times"),
    "channels": defaults.one_of(defaults.CHANNEL_COUNTS),
    "flip": defaults.boolean,
    "brightness_jitter": defaults.number_in(0, 1),
    "contrast_jitter": defaults.number_in(0, 1),
    "lq_shading": defaults.number_in(0, 1, high_included=True),
    "lq_noise": defaults.number_in(0, 0.25, high_included=True),
    "cache": defaults.optional_boolean,
    "cache_limit_mb": defaults.positive_int,
}


_SECTIONS = {
    "generator": GeneratorConfig,
    "discriminator": DiscriminatorConfig,
    "loss": LossConfig,
    "degradation": DegradationConfig,
    "train": TrainConfig,
    "data": DataConfig,
}


@dataclasses.dataclass
class SSPNetConfig:
    """Everything that defines an SSP-Net run. See the module docstring for the presets."""

    preset: str = "paper"
    generator: GeneratorConfig = dataclasses.field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = dataclasses.field(default_factory=DiscriminatorConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    degradation: DegradationConfig = dataclasses.field(default_factory=DegradationConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "SSPNetConfig":
        _require(isinstance(self.preset, str), "preset", "must be a string")
        for name, cls in _SECTIONS.items():
            section = getattr(self, name)
            _require(isinstance(section, cls), name, f"must be a {cls.__name__}")
            section.validate(name)
        largest_patch = max(self.loss.iu_patch_sizes)
        _require(
            largest_patch <= self.data.image_size,
            "loss.iu_patch_sizes",
            f"the largest patch ({largest_patch} px) must fit in the training crop (data.image_size = "
            f"{self.data.image_size}); use larger crops or smaller patches (--iu-patch-sizes)",
        )
        return self

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "SSPNetConfig":
        """Builds a config from a (possibly partial) dict, starting from its ``preset``."""
        if not isinstance(values, dict):
            raise ValueError(f"config must be a mapping, got {type(values).__name__}")
        values = dict(values)
        # Run directories store what a run resolved at start-up (replicas, global batch) and its
        # training data beside the config; informational, recomputed on every run.
        values.pop("resolved", None)
        values.pop("training_data", None)
        base = preset(values.pop("preset", "paper"))
        return base.replace(**values)

    def to_json(self, path: Optional[str] = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False)
        if path is not None:
            _atomic_write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, text_or_path: str) -> "SSPNetConfig":
        text = _read_if_path(text_or_path)
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"config is not valid JSON: {error}") from None
        return cls.from_dict(values)

    def to_yaml(self, path: Optional[str] = None) -> str:
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            _atomic_write_text(path, text)
        return text

    @classmethod
    def from_yaml(cls, text_or_path: str) -> "SSPNetConfig":
        import yaml

        try:
            values = yaml.safe_load(_read_if_path(text_or_path))
        except yaml.YAMLError as error:
            raise ValueError(f"config is not valid YAML: {error}") from None
        return cls.from_dict(values or {})

    @classmethod
    def from_file(cls, path: str) -> "SSPNetConfig":
        return cls.from_dict(read_config_file(path))

    def replace(self, **overrides: Any) -> "SSPNetConfig":
        """A copy with some fields changed.

        Sections take dicts of their own fields (``replace(train={"epochs": 3})``) or dotted
        keys (``replace(**{"train.epochs": 3})``). Unknown names raise ``ValueError``.
        """
        values = self.to_dict()
        for key, value in overrides.items():
            if "." in key:
                section, field = key.split(".", 1)
                _require(section in _SECTIONS, key, "unknown config section")
                values[section][field] = value
            elif key in _SECTIONS:
                _require(isinstance(value, dict), key, "must be a mapping of its fields")
                values[key].update(value)
            elif key == "preset":
                values["preset"] = value
            else:
                raise ValueError(f"config field '{key}': unknown field")
        return _from_plain(values)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    return value


def _from_plain(values: dict) -> SSPNetConfig:
    sections = {}
    for name, cls in _SECTIONS.items():
        raw = values.get(name, {})
        _require(isinstance(raw, dict), name, "must be a mapping of its fields")
        known = {field.name: field for field in dataclasses.fields(cls)}
        kwargs = {}
        for key, item in raw.items():
            _require(key in known, f"{name}.{key}", "unknown field")
            # JSON has no tuples: lists come back as tuples so configs compare equal.
            kwargs[key] = tuple(item) if isinstance(item, list) else item
        sections[name] = cls(**kwargs)
    unknown = set(values) - set(_SECTIONS) - {"preset"}
    if unknown:
        raise ValueError(f"config field '{sorted(unknown)[0]}': unknown field")
    return SSPNetConfig(preset=values.get("preset", "paper"), **sections)


def read_config_file(path: str) -> dict:
    """The settings of a JSON or YAML file (by extension: ``.yaml``/``.yml``, else JSON), as a dict.

    A file with no settings at all (empty, blank, or YAML comments only) is refused in both
    formats: it is more likely a mistake than a wish for every default; ``{}`` says "no settings".
    Raises ``ValueError`` naming the file.
    """
    if not os.path.isfile(path):
        raise ValueError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"config file '{path}' is not valid YAML: {' '.join(str(error).split())}") from None
    elif text.strip():
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"config file '{path}' is not valid JSON: {error}") from None
    else:
        values = None
    if values is None:
        raise ValueError(f"config file '{path}' is empty: it holds no settings (write {{}} for none, or leave out --config)")
    if not isinstance(values, dict):
        raise ValueError(f"config file '{path}' must hold a mapping of settings, got {type(values).__name__}")
    return values


def _read_if_path(text_or_path: str) -> str:
    if os.path.isfile(text_or_path):
        with open(text_or_path, encoding="utf-8") as handle:
            return handle.read()
    return text_or_path


def _atomic_write_text(path: str, text: str) -> None:
    from ssp_keras.utils.files import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))


# -------------------------------------------------------------------------------- presets
def _paper() -> SSPNetConfig:
    return SSPNetConfig(preset="paper")


def _lite() -> SSPNetConfig:
    return SSPNetConfig(
        preset="lite",
        generator=GeneratorConfig(
            encoder_block="basic",
            encoder_stages=(1, 1, 1, 1),
            encoder_widths=(16, 32, 64, 128),
            stem_width=16,
            decoder_widths=(64, 32, 16, 16, 8),
        ),
        discriminator=DiscriminatorConfig(num_layers=3, base_width=16),
        train=TrainConfig(epochs=20),
        data=DataConfig(image_size=256),
    )


PRESETS = {"paper": _paper, "lite": _lite}


def preset(name: str) -> SSPNetConfig:
    """A fresh copy of a named preset (``paper`` or ``lite``)."""
    if name not in PRESETS:
        raise ValueError(f"config field 'preset': unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()
