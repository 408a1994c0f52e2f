"""A float32 training kernel of issue #15 switched off inside the real training step, interleaved.

Run by hand (not part of the test suite):

    python benchmarks/kernel_ablation.py [--tcmalloc] [--preset paper] [--image-size 256] [--batch-size 4]
        [--variants before,library] [--rounds 6] [--steps 2]

Each variant is the library's `SSPNet` step, built and compiled as `benchmarks/train_step.py`
builds it (``concat``), and traced with these kernels on or off:

* ``split-norm``: instance norm of a batch as one fused batch norm per image (`networks.tf_kernels.
  instance_norm`); off, the batch is seen as one ``[1, H, W, N*C]`` image between two transposes
  (`networks.tf_kernels.instance_norm_as_one_image`, the formulation before).

``before`` has them off, ``library`` on (the shipped step). Every model is built first
and then traced under its own setting (building one makes the functions of those built before it
trace again), then all are timed in interleaved rounds with the float32 matmul rate measured in
each round, as in `benchmarks/train_step.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

KERNELS = ("split-norm",)
VARIANTS = {"before": (), "library": KERNELS}


@contextlib.contextmanager
def kernels_on(enabled):
    """Within the block, only the kernels named in ``enabled`` are used when a step is traced."""
    from ssp_keras.networks import tf_kernels

    saved = tf_kernels.instance_norm
    if "split-norm" not in enabled:
        tf_kernels.instance_norm = tf_kernels.instance_norm_as_one_image
    try:
        yield
    finally:
        tf_kernels.instance_norm = saved


def main(argv=None) -> int:
    common.reexec_with_tcmalloc_if_asked(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_step_arguments(parser)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per variant and round")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown or not names:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    if args.dry_run:
        return common.dry_run(args, f"the {args.preset} step at {args.image_size}^2, batch {args.batch_size}, with the "
                                    f"instance-norm kernels {', '.join(names)}: {args.rounds} rounds of {args.steps} steps")
    common.apply_common_arguments(args)

    import train_step

    print(common.cpu_line(), flush=True)
    variant = train_step.parse_variant("concat")  # float32: these kernels apply to float32 only
    built = {name: train_step.build(args.preset, args.image_size, args.batch_size, variant, args.channels)
             for name in names}
    for name in names:  # trace each step under its own setting, after every model is built
        model, iterator, _ = built[name]
        with kernels_on(VARIANTS[name]):
            train_step.run_steps(model, iterator, 2)
    config = built[names[0]][2]
    flops = train_step.count_step_flops(built[names[0]][0], config)["total"]

    seconds = {name: [] for name in names}
    rates = []
    for round_index in range(args.rounds):
        rates.append(common.matmul_rate()["flops_per_s"])
        for name in names if round_index % 2 == 0 else names[::-1]:
            model, iterator, _ = built[name]
            seconds[name].append(common.median(train_step.run_steps(model, iterator, args.steps)[0]))
        print(f"round {round_index + 1}/{args.rounds}: matmul {rates[-1] / 1e9:.0f} GFLOP/s; "
              + "; ".join(f"{name} {seconds[name][-1]:.3f} s" for name in names), flush=True)

    matmul = common.median(rates)
    reference = common.median(seconds[names[0]])
    rows = [{"variant": name, "kernels": ", ".join(VARIANTS[name]) or "none",
             "step_s": common.median(seconds[name]), "of_matmul": flops / common.median(seconds[name]) / matmul,
             "speedup": reference / common.median(seconds[name]),
             "faster_rounds": sum(a > b for a, b in zip(seconds[names[0]], seconds[name]))}
            for name in names]
    print(f"\n{args.preset}, {args.image_size}x{args.image_size}x{args.channels}, batch {args.batch_size} per domain, "
          f"float32; {flops / 1e9:.1f} GFLOP/step; float32 matmul {matmul / 1e9:.0f} GFLOP/s (median of rounds)")
    common.print_table(rows, [("variant", "variant"), ("kernels", "kernels on"), ("step_s", "s/step", "{:.3f}"),
                              ("of_matmul", "of matmul", "{:.0%}"), ("speedup", f"vs {names[0]}", "{:.2f}x"),
                              ("faster_rounds", f"rounds faster than {names[0]}")])
    if args.json:
        common.write_json(args.json, {"benchmark": "kernel_ablation", "environment": common.environment(),
                                      "settings": vars(args), "flops_per_step": flops, "matmul_flops_per_s": matmul,
                                      "seconds": seconds, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
