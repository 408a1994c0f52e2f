"""``ssp-net``: train, interpolate, enhance, export, serve-predict, measure and evaluate SSP-Net.

Each subcommand lives in its own module of this package, which defines
``register(subparsers) -> argparse.ArgumentParser`` and sets ``run=callable(args) -> int`` as the
parser default. Errors print one line: bad input exits 2 (nothing written); server errors, outputs
that could not be written part-way (a full disk) and training that went non-finite exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys

# Order is the order of `ssp-net --help`.
SUBCOMMANDS = ("demo", "train", "interpolate", "enhance", "export", "predict", "metrics", "evaluate", "segmenter")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (the project's rule for errors), not the usage
    text followed by the error: ``ssp-net predict: error: --timeout must be a finite number > 0,
    got nan``, as a command's own checks word it."""

    def error(self, message):
        message = re.sub(r"^argument ([^:]+): ", lambda match: match.group(1).split("/")[0] + " ", message)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="ssp-net",
        description="SSP-Net: Siamese structure-preserving GAN for unpaired medical image enhancement.",
    )
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show TensorFlow's own log messages (C++ start-up lines, TF_CPP_MIN_LOG_LEVEL "
                        "as set) and the project's INFO lines; without it only ssp-net's lines are shown")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"ssp_keras.cli.{name}").register(subparsers)
    return parser


def _quiet_tensorflow(verbose: bool):
    """Without ``--verbose``, TensorFlow's C++ lines are hidden; returns a function undoing the filter.

    Its start-up lines (printed while it loads, before it reads any setting) are filtered out of
    standard error (`ssp_keras.runtime.quiet_tensorflow_import`); its later ones, such as ``failed
    call to cuInit`` on a machine without a GPU, are hidden by ``TF_CPP_MIN_LOG_LEVEL=3``.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if verbose:
        return None
    from ssp_keras.runtime import quiet_tensorflow_import

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return quiet_tensorflow_import()


def main(argv=None) -> int:
    if argv is None:
        # Run as the `ssp-net` command: oneDNN and tcmalloc before TensorFlow loads (see runtime.py).
        # Not when called with an argv from Python, which may have loaded TensorFlow already.
        from ssp_keras.runtime import prepare_process

        prepare_process(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else argv
    unquiet = _quiet_tensorflow("--verbose" in argv or "-v" in argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit:  # --help, or a bad command line (one line printed already)
            return exit.code if isinstance(exit.code, int) else 2
        return _run(args)
    finally:
        if unquiet is not None:
            unquiet()


def _run(args: argparse.Namespace) -> int:
    from ssp_keras.errors import InputError, NonFiniteTrainingError, OutputError, ServingError

    try:
        return int(args.run(args) or 0)
    except InputError as error:
        print(f"ssp-net {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ServingError, OutputError, NonFiniteTrainingError) as error:
        print(f"ssp-net {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        # The file system said no where no command anticipated it: one line naming the path.
        if args.verbose:
            raise
        print(f"ssp-net {args.command}: error: {describe_os_failure(error)}", file=sys.stderr)
        return 1
    except ValueError as error:
        # Configuration errors (a field out of range) are the user's to fix too.
        if args.verbose:
            raise
        print(f"ssp-net {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ssp-net {args.command}: interrupted", file=sys.stderr)
        return 130


def describe_os_failure(error: OSError) -> str:
    """``cannot use 'PATH': No space left on device (errno 28)`` for an `OSError`."""
    reason = error.strerror or str(error) or type(error).__name__
    code = f" (errno {error.errno})" if error.errno else ""
    if error.filename is not None:
        return f"cannot use '{error.filename}': {reason}{code}"
    return f"{reason}{code}"


if __name__ == "__main__":
    sys.exit(main())
