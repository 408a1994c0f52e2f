"""The one configuration object of ssp-keras.

`SSPNetConfig` is a tree of small dataclasses (generator, discriminator, losses, training, data).
It is the only place defaults live: the command line, the model, the data pipeline and the
trainer all read their settings from it. It round-trips through JSON and YAML, and every field is
validated: a bad value raises `ValueError` naming the field (for example
``generator.encoder_stages``).

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
import math
import os
from typing import Any, Optional, Tuple

LOSS_VARIANTS = ("gan", "gan+iu", "gan+te", "gan+sp")
ADVERSARIAL_CRITERIA = ("lsgan", "bce")
NORMALIZATIONS = ("batch", "instance", "none")
ENCODER_BLOCKS = ("bottleneck", "basic")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def _require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"config field '{field}': {message}")


def _positive_int(value: Any, field: str) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        field,
        f"must be a positive integer, got {value!r}",
    )


def _non_negative_number(value: Any, field: str) -> None:
    _require(
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0,
        field,
        f"must be a finite number >= 0, got {value!r}",
    )


def _positive_int_tuple(value: Any, field: str, length: Optional[int] = None) -> None:
    _require(
        isinstance(value, tuple) and len(value) > 0,
        field,
        f"must be a non-empty list of positive integers, got {value!r}",
    )
    if length is not None:
        _require(len(value) == length, field, f"must have {length} entries, got {len(value)}")
    for item in value:
        _positive_int(item, field)


def _one_of(value: Any, choices: Tuple[str, ...], field: str) -> None:
    _require(value in choices, field, f"must be one of {list(choices)}, got {value!r}")


@dataclasses.dataclass
class GeneratorConfig:
    """The U-Net generator G: ResNet encoder, five-stage decoder (SPEC section 2).

    encoder_block: ``bottleneck`` (ResNet-50 family, output width 4x) or ``basic`` (ResNet-18).
    encoder_stages: blocks per stage; ``(3, 4, 6, 3)`` is ResNet-50.
    encoder_widths: inner width of each stage (ResNet-50: 64, 128, 256, 512).
    stem_width: width of the 7x7 stem and of the stride-2 3x3 conv replacing its max-pool.
    decoder_widths: five widths, from the 1/16 stage up to full resolution.
    normalization: ``batch`` (ResNet's), ``instance`` (per sample) or ``none``.
    sync_batch_norm: synchronise batch-norm statistics across replicas; ``None`` means on
      exactly when training on more than one replica.
    """

    encoder_block: str = "bottleneck"
    encoder_stages: Tuple[int, ...] = (3, 4, 6, 3)
    encoder_widths: Tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64
    decoder_widths: Tuple[int, ...] = (256, 128, 64, 32, 16)
    normalization: str = "batch"
    sync_batch_norm: Optional[bool] = None
    encoder_weights: Optional[str] = None

    def validate(self, prefix: str = "generator") -> None:
        _one_of(self.encoder_block, ENCODER_BLOCKS, f"{prefix}.encoder_block")
        _positive_int_tuple(self.encoder_stages, f"{prefix}.encoder_stages", 4)
        _positive_int_tuple(self.encoder_widths, f"{prefix}.encoder_widths", 4)
        _positive_int(self.stem_width, f"{prefix}.stem_width")
        _positive_int_tuple(self.decoder_widths, f"{prefix}.decoder_widths", 5)
        _one_of(self.normalization, NORMALIZATIONS, f"{prefix}.normalization")
        _require(
            self.sync_batch_norm in (None, True, False),
            f"{prefix}.sync_batch_norm",
            f"must be true, false or null, got {self.sync_batch_norm!r}",
        )
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

    num_layers: int = 3
    base_width: int = 64
    normalization: str = "instance"

    def validate(self, prefix: str = "discriminator") -> None:
        _positive_int(self.num_layers, f"{prefix}.num_layers")
        _require(self.num_layers >= 2, f"{prefix}.num_layers", "must be at least 2")
        _positive_int(self.base_width, f"{prefix}.base_width")
        _one_of(self.normalization, NORMALIZATIONS, f"{prefix}.normalization")


@dataclasses.dataclass
class LossConfig:
    """Weights and options of the losses of SPEC section 3.

    variant: the paper's Table 3 ablation; ``gan+sp`` is the full SSP-Net.
    lambda1, lambda2: weights of the LQ and HQ adversarial branches.
    alpha: weight of the structure-preserving loss L_SP = L_IU + beta * L_TE.
    iu_patch_divisors: L_IU patch sizes as fractions of the image height (8 -> H/8).
    structure_noise: std of the shared Gaussian noise added to both images of the structure term
      (StillGAN's 0.01); without it a flat output scores as perfect structure (see losses.structure).
    identity_weight: optional L1 between y and G(y) (0 = off).
    history_pool_size: optional pool of past fakes for D (0 = off; CycleGAN uses 50).
    """

    variant: str = "gan+sp"
    adversarial: str = "lsgan"
    lambda1: float = 0.6
    lambda2: float = 0.4
    alpha: float = 5.1
    beta: float = 1.0
    iu_patch_divisors: Tuple[int, ...] = (8, 4)
    ssim_window: int = 11
    ssim_sigma: float = 1.5
    structure_noise: float = 0.01
    identity_weight: float = 0.0
    history_pool_size: int = 0

    def validate(self, prefix: str = "loss") -> None:
        _one_of(self.variant, LOSS_VARIANTS, f"{prefix}.variant")
        _one_of(self.adversarial, ADVERSARIAL_CRITERIA, f"{prefix}.adversarial")
        for name in ("lambda1", "lambda2", "alpha", "beta", "identity_weight"):
            _non_negative_number(getattr(self, name), f"{prefix}.{name}")
        _positive_int_tuple(self.iu_patch_divisors, f"{prefix}.iu_patch_divisors")
        _positive_int(self.ssim_window, f"{prefix}.ssim_window")
        _require(self.ssim_window % 2 == 1, f"{prefix}.ssim_window", "must be odd")
        _non_negative_number(self.ssim_sigma, f"{prefix}.ssim_sigma")
        _non_negative_number(self.structure_noise, f"{prefix}.structure_noise")
        _require(self.ssim_sigma > 0, f"{prefix}.ssim_sigma", "must be > 0")
        _require(
            isinstance(self.history_pool_size, int) and self.history_pool_size >= 0,
            f"{prefix}.history_pool_size",
            f"must be an integer >= 0, got {self.history_pool_size!r}",
        )

    @property
    def use_illumination(self) -> bool:
        return self.variant in ("gan+iu", "gan+sp")

    @property
    def use_structure(self) -> bool:
        return self.variant in ("gan+te", "gan+sp")


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
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    cpu_replicas: int = 0
    image_grid_size: int = 4

    def validate(self, prefix: str = "train") -> None:
        _positive_int(self.batch_size, f"{prefix}.batch_size")
        _positive_int(self.epochs, f"{prefix}.epochs")
        if self.steps_per_epoch is not None:
            _positive_int(self.steps_per_epoch, f"{prefix}.steps_per_epoch")
        for name in ("lr_warmup_start", "lr_peak"):
            _non_negative_number(getattr(self, name), f"{prefix}.{name}")
        _require(self.lr_peak > 0, f"{prefix}.lr_peak", "must be > 0")
        _require(
            isinstance(self.lr_warmup_steps, int) and self.lr_warmup_steps >= 0,
            f"{prefix}.lr_warmup_steps",
            f"must be an integer >= 0, got {self.lr_warmup_steps!r}",
        )
        _positive_int(self.lr_halving_epochs, f"{prefix}.lr_halving_epochs")
        for name in (
            "generator_beta_1",
            "generator_beta_2",
            "discriminator_beta_1",
            "discriminator_beta_2",
        ):
            value = getattr(self, name)
            _require(
                isinstance(value, (int, float)) and 0 <= value < 1,
                f"{prefix}.{name}",
                f"must be in [0, 1), got {value!r}",
            )
        _require(
            isinstance(self.seed, int) and not isinstance(self.seed, bool),
            f"{prefix}.seed",
            f"must be an integer, got {self.seed!r}",
        )
        _one_of(self.precision, PRECISIONS, f"{prefix}.precision")
        _require(isinstance(self.jit_compile, bool), f"{prefix}.jit_compile", "must be true or false")
        _one_of(self.strategy, STRATEGIES, f"{prefix}.strategy")
        _require(
            isinstance(self.cpu_replicas, int) and self.cpu_replicas >= 0,
            f"{prefix}.cpu_replicas",
            f"must be an integer >= 0, got {self.cpu_replicas!r}",
        )
        _positive_int(self.image_grid_size, f"{prefix}.image_grid_size")


@dataclasses.dataclass
class DataConfig:
    """Training images (SPEC section 5).

    image_size: side of the square random training crops (a multiple of 32); images smaller than
      this are resized up first.
    channels: 1 (grayscale, the default for confocal microscopy) or 3 (RGB).
    flip: random horizontal and vertical flips.
    brightness_jitter, contrast_jitter: strength of the mild colour-space jitter (0 = off).
    cache: keep decoded images in memory; ``None`` decides from the folder's size.
    """

    image_size: int = 384
    channels: int = 1
    flip: bool = True
    brightness_jitter: float = 0.05
    contrast_jitter: float = 0.1
    cache: Optional[bool] = None
    cache_limit_mb: int = 2048

    def validate(self, prefix: str = "data") -> None:
        _positive_int(self.image_size, f"{prefix}.image_size")
        _require(
            self.image_size % 32 == 0,
            f"{prefix}.image_size",
            f"must be a multiple of 32 (the generator downsamples 5 times), got {self.image_size}",
        )
        _require(self.channels in (1, 3), f"{prefix}.channels", f"must be 1 or 3, got {self.channels!r}")
        _require(isinstance(self.flip, bool), f"{prefix}.flip", "must be true or false")
        for name in ("brightness_jitter", "contrast_jitter"):
            value = getattr(self, name)
            _non_negative_number(value, f"{prefix}.{name}")
            _require(value < 1, f"{prefix}.{name}", f"must be < 1, got {value!r}")
        _require(
            self.cache in (None, True, False),
            f"{prefix}.cache",
            f"must be true, false or null, got {self.cache!r}",
        )
        _positive_int(self.cache_limit_mb, f"{prefix}.cache_limit_mb")


_SECTIONS = {
    "generator": GeneratorConfig,
    "discriminator": DiscriminatorConfig,
    "loss": LossConfig,
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
        # Run directories store what a run resolved at start-up (replicas, global batch) beside
        # the config; it is informational and recomputed on every run.
        values.pop("resolved", None)
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
        if not os.path.isfile(path):
            raise ValueError(f"config file not found: {path}")
        if path.endswith((".yaml", ".yml")):
            return cls.from_yaml(path)
        return cls.from_json(path)

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
        data=DataConfig(image_size=128),
    )


PRESETS = {"paper": _paper, "lite": _lite}


def preset(name: str) -> SSPNetConfig:
    """A fresh copy of a named preset (``paper`` or ``lite``)."""
    if name not in PRESETS:
        raise ValueError(f"config field 'preset': unknown preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name]()
