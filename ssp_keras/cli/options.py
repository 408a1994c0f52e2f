"""Command-line options shared by several subcommands, and their mapping onto `SSPNetConfig`."""

from __future__ import annotations

import argparse

from ssp_keras.config import LOSS_VARIANTS, PRECISIONS, STRATEGIES, SSPNetConfig, preset


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """--preset/--config and the training overrides every training-like command accepts."""
    group = parser.add_argument_group("configuration (preset, then --config file, then these flags)")
    group.add_argument("--preset", choices=["paper", "lite"], default=None,
                       help="network and training preset (default: paper, or the --config file's)")
    group.add_argument("--config", metavar="FILE", help="a JSON or YAML configuration file")
    group.add_argument("--epochs", type=int, help="total number of epochs")
    group.add_argument("--steps-per-epoch", type=int, help="optimiser iterations per epoch")
    group.add_argument("--image-size", type=int, help="side of the square training crops (a multiple of 32)")
    group.add_argument("--batch-size", type=int, help="images per domain per replica")
    group.add_argument("--channels", type=int, choices=[1, 3], help="1 = grayscale, 3 = RGB")
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--variant", choices=LOSS_VARIANTS, help="loss variant (the paper's Table 3 ablation)")
    group.add_argument("--strategy", choices=STRATEGIES, help="distribution strategy (default auto)")
    group.add_argument("--cpu-replicas", type=int, help="split the CPU into N logical devices (testing)")
    group.add_argument("--precision", choices=PRECISIONS, help="dtype policy")
    group.add_argument("--mixed-precision", action="store_true",
                       help="mixed_float16 on GPU (with loss scaling), mixed_bfloat16 on CPU")
    group.add_argument("--jit-compile", action="store_true", help="compile the train step with XLA")


_OVERRIDES = {
    "epochs": "train.epochs",
    "steps_per_epoch": "train.steps_per_epoch",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "strategy": "train.strategy",
    "cpu_replicas": "train.cpu_replicas",
    "precision": "train.precision",
    "image_size": "data.image_size",
    "channels": "data.channels",
    "variant": "loss.variant",
}


def config_from_args(args: argparse.Namespace, default_preset: str = "paper") -> SSPNetConfig:
    """Preset, then the --config file, then explicit flags; validated (ValueError names the field)."""
    if args.config:
        config = SSPNetConfig.from_file(args.config)
        if args.preset and args.preset != config.preset:
            raise ValueError(f"--preset {args.preset} contradicts the preset {config.preset!r} of {args.config}")
    else:
        config = preset(args.preset or default_preset)
    overrides = {
        dotted: getattr(args, name) for name, dotted in _OVERRIDES.items() if getattr(args, name, None) is not None
    }
    if getattr(args, "mixed_precision", False):
        overrides["train.precision"] = _mixed_policy()
    if getattr(args, "jit_compile", False):
        overrides["train.jit_compile"] = True
    return config.replace(**overrides)


def _mixed_policy() -> str:
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
