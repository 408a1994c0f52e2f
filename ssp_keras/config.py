"""The one configuration object of ssp-keras.

`SSPNetConfig` is a tree of small dataclasses (generator, discriminator, losses, training, data).
The command line, the model, the data pipeline and the trainer all read their settings from it.
It round-trips through JSON and YAML, and every field is validated: a bad value raises
`ValueError` naming the field (for example ``generator.encoder_stages``).

Where defaults live: every field is written once, with its default and its rule beside it
(`ssp_keras.defaults.setting`). The model sections (generator, discriminator, loss, degradation)
are the constructor arguments of `SSPGenerator`, `PatchDiscriminator`, `SSPNet` and
`RestorationDegradation` and live in `ssp_keras.defaults`, which the constructors read too; the
training and data sections (no constructor takes them) live here.

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
from typing import Any, Optional

from ssp_keras import defaults
from ssp_keras.defaults import (  # noqa: F401  (the model sections and choices, importable from here as before)
    ADVERSARIAL_CRITERIA,
    ENCODER_BLOCKS,
    LOSS_VARIANT_TERMS,
    LOSS_VARIANTS,
    NORMALIZATIONS,
    PADDINGS,
    DegradationConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    LossConfig,
    Section,
    setting,
)

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
#: Keras backends that train SSP-Net (`ssp_keras.runtime.select_keras_backend`).
BACKENDS = ("tensorflow", "jax")


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"config field '{field}': {message}")


_ADAM_BETA = defaults.number_in(0, 1)


@dataclasses.dataclass
class TrainConfig(Section):
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

    batch_size: int = setting(4, defaults.positive_int)
    epochs: int = setting(200, defaults.positive_int)
    steps_per_epoch: Optional[int] = setting(None, defaults.optional(defaults.positive_int))
    lr_warmup_start: float = setting(3e-5, defaults.non_negative_number)
    lr_peak: float = setting(1e-4, defaults.positive_number)
    lr_warmup_steps: int = setting(500, defaults.non_negative_int)
    lr_halving_epochs: int = setting(15, defaults.positive_int)
    generator_beta_1: float = setting(0.5, _ADAM_BETA)
    generator_beta_2: float = setting(0.9, _ADAM_BETA)
    discriminator_beta_1: float = setting(0.9, _ADAM_BETA)
    discriminator_beta_2: float = setting(0.999, _ADAM_BETA)
    seed: int = setting(0, defaults.seed)
    precision: str = setting("auto", defaults.one_of(PRECISIONS))
    jit_compile: bool = setting(False, defaults.boolean)
    strategy: str = setting("auto", defaults.one_of(STRATEGIES))
    cpu_replicas: int = setting(0, defaults.non_negative_int)
    image_grid_size: int = setting(4, defaults.positive_int)
    backend: str = setting("tensorflow", defaults.one_of(BACKENDS))

    def validate(self, prefix: str = "train") -> None:
        super().validate(prefix)


@dataclasses.dataclass
class DataConfig(Section):
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

    image_size: int = setting(384, defaults.multiple_of(defaults.GENERATOR_SIZE_MULTIPLE,
                                                        "the generator downsamples 5 times"))
    channels: int = setting(defaults.DEFAULT_CHANNELS, defaults.image_channels)
    flip: bool = setting(True, defaults.boolean)
    brightness_jitter: float = setting(0.05, defaults.number_in(0, 1))
    contrast_jitter: float = setting(0.1, defaults.number_in(0, 1))
    lq_shading: float = setting(0.5, defaults.number_in(0, 1, high_included=True))
    lq_noise: float = setting(0.0, defaults.number_in(0, 0.25, high_included=True))
    cache: Optional[bool] = setting(None, defaults.optional_boolean)
    cache_limit_mb: int = setting(2048, defaults.positive_int)

    def validate(self, prefix: str = "data") -> None:
        super().validate(prefix)


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
        degraded = self.degradation.active or self.loss.denoising_noise > 0
        restoration = self.loss.restoration_consistency > 0
        _require(
            not restoration or degraded,
            "loss.restoration_consistency",
            "compares G's output on the degraded crop with the teacher's on the crop, so it needs the "
            "restoration degradation (degradation.*_probability) or loss.denoising_noise on",
        )
        _require(
            not self.loss.synthetic_restoration or degraded,
            "loss.synthetic_restoration",
            "asks G to restore degraded synthetic scenes, so it needs the restoration degradation "
            "(degradation.*_probability) or loss.denoising_noise on",
        )
        _require(
            restoration == (self.loss.restoration_teacher is not None),
            "loss.restoration_teacher",
            "must be set exactly when loss.restoration_consistency > 0 (the teacher whose output on the "
            "crop is that term's target); got "
            f"restoration_consistency {self.loss.restoration_consistency} and restoration_teacher "
            f"{self.loss.restoration_teacher!r}",
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
