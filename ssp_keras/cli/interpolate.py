"""``ssp-net interpolate``: a generator between a fine-tune's start and its end, in weight space.

``OUT_DIR/generator.keras`` gets ``START + weight * (END - START)`` (`interpolate_generators`;
START may be narrower, as ``--init-from`` grows it), ``OUT_DIR/config.json`` END's training
configuration where END is a run folder (or its ``generator.keras``) that has one (its
architecture is the result's), and ``OUT_DIR/interpolation.json`` what was interpolated. Files are written atomically, the generator
last; an existing ``generator.keras`` in OUT_DIR is not replaced.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from ssp_keras.cli.options import argument_type
    from ssp_keras.defaults import number_in

    parser = subparsers.add_parser(
        "interpolate",
        help="interpolate between a fine-tune's start and end generators",
        description="Write OUT_DIR/generator.keras with the weights START + WEIGHT * (END - START) "
        "(WiSE-FT: weight 0 computes START's output, 1 END's; in between trades what fine-tuning "
        "gained against what it cost). START is the generator END was fine-tuned from; it may have "
        "been narrower (no full-resolution skip, narrower decoder stages), as --init-from allows.",
    )
    parser.add_argument("start", metavar="START", help="the generator END was fine-tuned from: a run folder, "
                        "a .keras file or a pretrained name")
    parser.add_argument("end", metavar="END", help="the fine-tuned generator (its architecture is the result's)")
    parser.add_argument("--weight", required=True, metavar="W",
                        type=argument_type(float, number_in(0.0, 1.0, high_included=True), "--weight"),
                        help="how far from START towards END, in [0, 1]")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for generator.keras (created)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    import os

    from ssp_keras.cli.options import require_model, require_output_folder
    from ssp_keras.errors import InputError
    from ssp_keras.inference.loading import GENERATOR_FILE

    # Before TensorFlow loads (seconds): both models exist, the folder can be made, nothing is replaced.
    require_model(args.start)
    require_model(args.end)
    require_output_folder(args.out)
    target = os.path.join(args.out, GENERATOR_FILE)
    if os.path.exists(target):
        raise InputError(f"'{target}' exists; interpolate into another --out folder")
    from ssp_keras.utils.locks import claim_folder

    with claim_folder(args.out, "ssp-net interpolate"):
        return _interpolate(args, target)


def _interpolate(args: argparse.Namespace, target: str) -> int:
    import json
    import os

    from ssp_keras.errors import InputError
    from ssp_keras.inference.loading import GENERATOR_FILE, load_generator, resolve_generator_path
    from ssp_keras.networks import SSPGenerator, interpolate_generators
    from ssp_keras.utils.files import atomic_save, atomic_write_bytes

    start, end = load_generator(args.start), load_generator(args.end)
    for source, model in ((args.start, start), (args.end, end)):
        if not isinstance(model, SSPGenerator):
            raise InputError(f"'{source}' is not an SSP-Net generator; only SSPGenerator weights can be interpolated")
    try:
        result = interpolate_generators(start, end, args.weight)
    except ValueError:
        raise InputError(f"cannot interpolate from '{args.start}' to '{args.end}': END's architecture must be "
                         "START's, or START's with the full-resolution skip added or decoder stages widened") from None
    end_file = resolve_generator_path(args.end)
    end_config = os.path.join(os.path.dirname(end_file), "config.json")
    # Only a run folder's (or a pretrained model's) config.json describes END: a loose .keras file
    # may lie beside another model's.
    if os.path.basename(end_file) == GENERATOR_FILE and os.path.isfile(end_config):
        with open(end_config, "rb") as file:
            atomic_write_bytes(os.path.join(args.out, "config.json"), file.read())
    record = {"start": args.start, "end": args.end, "weight": args.weight,
              "rule": "start + weight * (end - start), start grown into end's architecture"}
    atomic_write_bytes(os.path.join(args.out, "interpolation.json"), (json.dumps(record, indent=2) + "\n").encode())
    # Last: its presence is what a second run refuses, so a run stopped before it can simply be rerun.
    atomic_save(target, lambda temporary: result.save(temporary))
    print(f"Wrote {target}: {args.start} + {args.weight:g} x ({args.end} - {args.start})")
    return 0
