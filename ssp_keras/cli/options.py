"""Command-line options shared by several subcommands, and their mapping onto `SSPNetConfig`.

The ``require_*`` checks report a missing input, model or a bad output folder before a command
imports TensorFlow (which takes seconds), with the same messages the later checks would give.
"""

from __future__ import annotations

import argparse
import os
import sys

from ssp_keras.config import BACKENDS, LOSS_VARIANTS, PRECISIONS, STRATEGIES, SSPNetConfig, preset
from ssp_keras.defaults import CHANNEL_COUNTS


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """--preset/--config and the training overrides every training-like command accepts."""
    group = parser.add_argument_group("configuration (preset, then --config file, then these flags)")
    group.add_argument("--preset", choices=["paper", "lite"], default=None,
                       help="network and training preset (default: paper, or the --config file's)")
    group.add_argument("--config", metavar="FILE", help="a JSON or YAML configuration file")
    group.add_argument("--epochs", type=int, help="total number of epochs")
    group.add_argument("--steps-per-epoch", type=int, help="optimiser iterations per epoch")
    group.add_argument("--image-size", type=int, help="side of the square training crops (a multiple of 32)")
    group.add_argument("--iu-patch-sizes", type=int, nargs="+", metavar="PIXELS",
                       help="illumination-uniformity patch sizes in pixels (default 48 96; at most the crop size)")
    group.add_argument("--batch-size", type=int, help="images per domain per replica")
    group.add_argument("--channels", type=int, choices=CHANNEL_COUNTS, help="1 = grayscale, 3 = RGB")
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--variant", choices=LOSS_VARIANTS, help="loss variant (the paper's Table 3 ablation)")
    group.add_argument("--strategy", choices=STRATEGIES, help="distribution strategy (default auto)")
    group.add_argument("--cpu-replicas", type=int, help="split the CPU into N logical devices (testing)")
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

    ``train.backend``: ``--backend``, else ``$KERAS_BACKEND``, else the file's or preset's; Keras is
    set to it here, before it loads.
    """
    if args.config:
        config = SSPNetConfig.from_file(args.config)
        if args.preset and args.preset != config.preset:
            raise ValueError(f"--preset {args.preset} contradicts the preset {config.preset!r} of {args.config}")
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
    """`InputError` when ``path``, or the first of its parents that exists, is not a folder.

    An output folder that is an existing file can only fail later, after the work is done.
    """
    from ssp_keras.errors import InputError

    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{option} '{path}' is an existing file, not a folder: choose another {option}")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise InputError(f"{option} '{path}' cannot be created: '{parent}' is a file, not a folder")


def require_model(source) -> None:
    """`InputError` unless ``source`` is a run folder with a generator, a .keras file or a pretrained name."""
    from ssp_keras.inference.loading import resolve_generator_path  # no TensorFlow

    if source is not None:
        resolve_generator_path(os.fspath(source))
