"""Command-line options shared by several subcommands, and their mapping onto `SSPNetConfig`.

The argument types below (`POSITIVE_INT`, `FINITE_POSITIVE`, `SERVER_ADDRESS`, ...) are the one set
every subcommand uses for its numeric and address options: argparse refuses a bad value with one
line naming the option before anything else runs. They apply the rules of `ssp_keras.defaults`, so
a flag and the configuration field it sets accept the same values.

The ``require_*`` checks report a missing input, model or a bad output folder before a command
imports TensorFlow (which takes seconds), with the same messages the later checks would give.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

from ssp_keras import defaults
from ssp_keras.config import BACKENDS, LOSS_VARIANTS, PRECISIONS, STRATEGIES, SSPNetConfig, preset
from ssp_keras.defaults import CHANNEL_COUNTS


# ------------------------------------------------------------------ validated argument types
def argument_type(convert: Callable[[str], object], rule: defaults.Rule, name: str) -> Callable[[str], object]:
    """An argparse ``type``: ``convert`` the text, then check it with a `ssp_keras.defaults` rule.

    argparse reports a failure as ``argument --timeout: must be a finite number > 0, got nan``.
    """

    def parse(text: str):
        try:
            value = convert(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(rule(text)) from None  # the rule's complaint, naming the text
        problem = rule(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = name
    return parse


def _message_megabytes(value) -> Optional[str]:
    # gRPC messages are limited to 2 GiB - 1 (TF Serving raises its limit to that, no further).
    return defaults.positive_number(value) or (
        None if value < 2048 else f"must be below 2048 (gRPC's 2 GiB message limit), got {value!r}")


POSITIVE_INT = argument_type(int, defaults.positive_int, "positive integer")
NON_NEGATIVE_INT = argument_type(int, defaults.non_negative_int, "integer >= 0")
SEED = argument_type(int, defaults.seed, "seed")
FINITE_POSITIVE = argument_type(float, defaults.positive_number, "number > 0")
FINITE_NON_NEGATIVE = argument_type(float, defaults.non_negative_number, "number >= 0")
MESSAGE_MEGABYTES = argument_type(float, _message_megabytes, "MiB")


def _server_address(text: str) -> str:
    from ssp_keras.serving.client import parse_server_address  # no TensorFlow

    try:
        return parse_server_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


SERVER_ADDRESS = _server_address


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """--preset/--config and the training overrides every training-like command accepts."""
    group = parser.add_argument_group("configuration (preset, then --config file, then these flags)")
    group.add_argument("--preset", choices=["paper", "lite"], default=None,
                       help="network and training preset (default: the one the --config file names, else paper)")
    group.add_argument("--config", metavar="FILE",
                       help="a JSON or YAML configuration file; its settings replace the preset's (a file naming "
                       "another preset than --preset is refused; an empty file is refused: {} means no settings)")
    group.add_argument("--epochs", type=POSITIVE_INT, help="total number of epochs")
    group.add_argument("--steps-per-epoch", type=POSITIVE_INT, help="optimiser iterations per epoch")
    group.add_argument("--image-size", type=POSITIVE_INT, help="side of the square training crops (a multiple of 32)")
    group.add_argument("--iu-patch-sizes", type=POSITIVE_INT, nargs="+", metavar="PIXELS",
                       help="illumination-uniformity patch sizes in pixels (default 48 96; at most the crop size)")
    group.add_argument("--batch-size", type=POSITIVE_INT, help="images per domain per replica")
    group.add_argument("--channels", type=int, choices=CHANNEL_COUNTS, help="1 = grayscale, 3 = RGB")
    group.add_argument("--seed", type=SEED, help="random seed (0 to 2**32 - 1)")
    group.add_argument("--variant", choices=LOSS_VARIANTS, help="loss variant (the paper's Table 3 ablation)")
    group.add_argument("--strategy", choices=STRATEGIES, help="distribution strategy (default auto)")
    group.add_argument("--cpu-replicas", type=NON_NEGATIVE_INT, help="split the CPU into N logical devices (testing)")
    group.add_argument("--precision", choices=PRECISIONS, help="dtype policy")
    group.add_argument("--mixed-precision", action="store_true",
                       help="mixed_float16 on GPU (with loss scaling), mixed_bfloat16 on a CPU with native bfloat16 "
                            "(avx512_bf16 or amx_bf16); float32 elsewhere")
    group.add_argument("--jit-compile", action="store_true", help="compile the train step with XLA")
    add_backend_option(group, "train")


def add_backend_option(parser, what: str) -> None:
    """``--backend tensorflow|jax``: the Keras backend to ``what`` on (default: $KERAS_BACKEND, else
    the configuration's, TensorFlow)."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help=f"Keras backend to {what} on (default: $KERAS_BACKEND if set, else tensorflow"
                             + (" or the --config file's train.backend" if what == "train" else "") + ")")


def select_backend(flag) -> str:
    """Selects the Keras backend of ``--backend FLAG`` (else $KERAS_BACKEND, else TensorFlow) before
    Keras loads (`ssp_keras.runtime.select_keras_backend`); returns it."""
    from ssp_keras.runtime import requested_keras_backend, select_keras_backend

    backend = _checked_backend(requested_keras_backend(flag)) or "tensorflow"
    select_keras_backend(backend)
    return backend


def _checked_backend(backend):
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND={backend!r}: ssp-net runs on the backends {list(BACKENDS)}")
    return backend


_OVERRIDES = {
    "epochs": "train.epochs",
    "iu_patch_sizes": "loss.iu_patch_sizes",
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
    """Preset, then the --config file, then explicit flags; validated (ValueError names the field).

    The preset is --preset, else the one the file names, else ``default_preset``; a file naming
    another preset than --preset is refused. The file's settings then replace the preset's.
    ``train.backend``: ``--backend``, else ``$KERAS_BACKEND``, else the file's or preset's; Keras is
    set to it here, before it loads.
    """
    from ssp_keras.config import read_config_file

    if args.config:
        values = read_config_file(args.config)
        named = values.get("preset")
        if args.preset and named is not None and args.preset != named:
            raise ValueError(f"--preset {args.preset} contradicts the preset {named!r} of {args.config}")
        config = SSPNetConfig.from_dict({**values, "preset": args.preset or named or default_preset})
    else:
        config = preset(args.preset or default_preset)
    overrides = {
        dotted: getattr(args, name) for name, dotted in _OVERRIDES.items() if getattr(args, name, None) is not None
    }
    if getattr(args, "jit_compile", False):
        overrides["train.jit_compile"] = True
    from ssp_keras.runtime import requested_keras_backend, select_keras_backend

    backend = _checked_backend(requested_keras_backend(getattr(args, "backend", None)))
    if backend is not None:
        overrides["train.backend"] = backend
    config = config.replace(**overrides)
    # Before anything imports Keras: the flag must take effect (and mixed_policy asks the backend for GPUs).
    select_keras_backend(config.train.backend)
    if getattr(args, "mixed_precision", False):
        from ssp_keras.precision import mixed_policy

        config = config.replace(**{"train.precision": mixed_policy()})
    return config


# ------------------------------------------------------------------ checks before TensorFlow loads
def require_paths(paths, message: str = "image file or folder not found: '{}'") -> None:
    """`InputError` naming the first of ``paths`` (files or folders) that does not exist."""
    from ssp_keras.errors import InputError

    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths or ():
        if not os.path.exists(path):
            raise InputError(message.format(os.fspath(path)))


def require_folder(path, what: str) -> None:
    """`InputError` ("{what} folder not found: 'PATH'") unless ``path`` is None or a folder."""
    from ssp_keras.errors import InputError

    if path is not None and not os.path.isdir(path):
        raise InputError(f"{what} folder not found: '{os.fspath(path)}'")


def require_corn_root(root) -> None:
    """`InputError` unless ``root`` is None or holds ``trainA/`` and ``trainB/`` (as `corn_folders`)."""
    from ssp_keras.errors import InputError

    for name in ("trainA", "trainB") if root is not None else ():
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            raise InputError(f"'{root}' is not a CORN-style data root: missing folder '{folder}'")


def require_output_folder(path, option: str = "--out") -> None:
    """`InputError` when ``path``, or the first of its parents that exists, is not a folder."""
    from ssp_keras.utils.files import check_folder_creatable

    check_folder_creatable(path, option)


def require_model(source) -> None:
    """`InputError` unless ``source`` is a run folder with a generator, a .keras file or a pretrained name."""
    from ssp_keras.inference.loading import resolve_generator_path  # no TensorFlow

    if source is not None:
        resolve_generator_path(os.fspath(source))
