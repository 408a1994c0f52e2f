"""Speed of one SSP-Net training step (G and D forward + backward + Adam), against the CPU's matmul rate.

Run by hand (not part of the test suite):

    python benchmarks/train_step.py [--preset paper lite] [--image-size 256] [--batch-size 4]
        [--variants concat,two-pass,concat+xla,concat+bf16] [--rounds 3] [--steps 3]
        [--tcmalloc] [--intra-op N --inter-op N] [--profile STEPS] [--json results.json]
    python benchmarks/train_step.py --compare glibc,tcmalloc,tcmalloc+onednn [--repeats 2]
        # one child process per setting, alternating: allocator, oneDNN (TF_ENABLE_ONEDNN_OPTS),
        # thread pools (threads=IxJ: intra x inter-op)
    python benchmarks/train_step.py --backend jax ...      # the same step on the JAX backend
    python benchmarks/train_step.py --compare tensorflow,jax,tensorflow+checkout=/path/to/old/checkout
        # the backends (the backend is fixed per process), and the library of another checkout
        # (its ssp_keras, this script), in alternating child processes

For each preset and variant the model is built and compiled as the trainer does (`build_sspnet`,
`build_optimizers`, `compile`), and fed a constant random batch of ``batch`` LQ and ``batch`` HQ
images through a `tf.data` iterator and the Keras train function, as `fit` does; on JAX
(``--backend jax``: always XLA-compiled, as the trainer runs it) through ``train_on_batch``. After
``--warmup`` steps (tracing, and XLA compilation for ``+xla``), the variants are timed in
interleaved rounds (round 1: matmul, A, B, ...; round 2: matmul, A, B, ...), so that a change of
machine load hits every variant alike; each round also re-measures the float32 matmul rate.

Columns:

* ``s/step``: median wall seconds of one training step (the function returns when the step is done).
* ``img/s``: images through G per second, LQ + HQ: ``2 * batch / (s/step)``.
* ``GFLOP/step``: floating-point operations of one step, counted from the traced graph of
  ``model.train_step`` (`common.count_graph_flops`: TensorFlow's registered per-op statistics,
  what ``tf.compat.v1.profiler`` counts; convolutions and their two backward ops at 2 FLOPs per
  multiply-add, element-wise ops at one per element; only ops that actually run). This covers:
  G forward on 2B images, D forward+backward on 3B images and Adam on D, D forward on 2B images
  and its input-gradient back into G, G backward, the losses and Adam on G.
  All variants of one preset and batch are rated with the count of the first variant listed (they
  do the same arithmetic; their graphs only split element-wise work into different ops, < 1% of
  the count); each variant's own count is in the JSON (``own_graph_flops_per_step``). On JAX the
  count is XLA's cost analysis of the compiled step (`common.xla_flops`, the same conventions).
* ``GFLOP/s``: achieved rate, ``GFLOP/step / (s/step)``.
* ``of matmul``: that as a fraction of the float32 ``N x N`` matmul rate (``--matmul-size``)
  measured in the same process, same threads, in the same rounds (median), with the backend's
  own matmul.
* ``user/sys s``: CPU seconds per step of the whole process (system time shows allocator cost).
* ``of matmul per CPU-s``: FLOPs per CPU-second of the step over FLOPs per CPU-second of the
  matmul: the same ratio computed from CPU time instead of wall time, which other processes
  competing for the cores disturb much less (use it when the load average is above the core count).

``--profile STEPS`` then runs STEPS more steps of each variant under the TensorFlow profiler and
prints where the step's time goes by op type (`common.op_time_breakdown`): the convolutions and
their gradients against padding, normalisation, element-wise work and casts.

Variants (``+``-joined tokens): ``concat`` (the library's step: one G pass over the concatenated
LQ+HQ batch), ``two-pass`` (benchmark-only: two separate G passes, as a naive port does), ``xla``
(``jit_compile=True``), ``bf16`` (``mixed_bfloat16`` dtype policy), the generator's design
(``batch-norm``: batch normalisation instead of the default instance norm; ``zero-pad``: Keras'
"same" zero padding instead of mirror padding; ``concat+batch-norm+zero-pad`` is the generator as
it was before instance norm), and, to measure the library's CPU kernels against what they
replace: ``keras-kernels`` (``SSPGenerator(fused_kernels=False)``: Keras' ``BatchNormalization``
and plain ``Conv2D`` instead of ``FusedBatchNormalization`` and ``WideInputConv2D``) and
``keras-adam`` (Keras' ``Adam`` instead of ``FusedAdam``).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.reexec_with_tcmalloc_if_asked()
common.apply_onednn_flag()
common.apply_backend_flag()  # before Keras loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import gc  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

VARIANT_TOKENS = ("concat", "two-pass", "xla", "bf16", "batch-norm", "zero-pad", "keras-kernels", "keras-adam")


def parse_variant(text: str) -> dict:
    tokens = text.split("+")
    unknown = [t for t in tokens if t not in VARIANT_TOKENS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant token {unknown[0]!r}; tokens: {', '.join(VARIANT_TOKENS)}")
    return {
        "name": text,
        "two_pass": "two-pass" in tokens,
        "jit_compile": "xla" in tokens,
        "precision": "mixed_bfloat16" if "bf16" in tokens else "float32",
        "normalization": "batch" if "batch-norm" in tokens else "instance",
        "padding": "zero" if "zero-pad" in tokens else "mirror",
        "fused_kernels": "keras-kernels" not in tokens,
        "fused_adam": "keras-adam" not in tokens,
    }


def build(preset_name: str, image_size: int, batch_size: int, variant: dict, channels: int):
    """A compiled SSPNet for the preset and the data its steps read (a `tf.data` iterator on
    TensorFlow, the ``(lq, hq)`` arrays on JAX), and the configuration."""
    import keras
    import numpy as np

    from ssp_keras.config import preset
    from ssp_keras.training.model import SSPNet, build_optimizers, build_sspnet

    config = preset(preset_name).replace(**{
        "data.image_size": image_size, "data.channels": channels, "train.batch_size": batch_size,
        "train.precision": variant["precision"], "train.jit_compile": variant["jit_compile"],
        "generator.normalization": variant["normalization"], "generator.padding": variant["padding"],
    })
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.precision)
    try:
        keras.utils.set_random_seed(0)
        model = build_sspnet(config, fused_kernels=variant["fused_kernels"])
        if variant["two_pass"]:
            model.__class__ = TwoPassSSPNet
        optimizers = build_optimizers(config, steps_per_epoch=100, fused=variant["fused_adam"])
        # JAX runs a step only compiled (as the trainer does).
        model.compile(*optimizers, jit_compile=config.train.jit_compile or keras.backend.backend() == "jax")
    finally:
        keras.config.set_dtype_policy(previous_policy)
    rng = np.random.default_rng(0)
    shape = (batch_size, image_size, image_size, channels)
    lq, hq = rng.random(shape, np.float32), rng.random(shape, np.float32)
    assert isinstance(model, SSPNet)
    if keras.backend.backend() == "jax":
        return model, (lq, hq), config
    import tensorflow as tf

    iterator = iter(tf.data.Dataset.from_tensors((tf.constant(lq), tf.constant(hq))).repeat())
    model.make_train_function()
    return model, iterator, config


def _two_pass_class():
    from ssp_keras.training.model import SSPNet

    class TwoPassSSPNet(SSPNet):
        """Benchmark-only: G runs once on LQ and once on HQ (a naive port), not on the concatenation."""

        def _enhance_both(self, lq, hq, training):
            return self.generator(lq, training=training), self.generator(hq, training=training)

    return TwoPassSSPNet


def count_step_flops(model, config) -> dict:
    """FLOPs of one `model.train_step` on this batch shape (traced, never run; on JAX compiled)."""
    size, channels, batch = config.data.image_size, config.data.channels, config.train.batch_size
    if common.keras_backend() == "jax":
        import numpy as np

        values = lambda variables: [variable.value for variable in variables]  # noqa: E731
        state = (values(model.trainable_variables), values(model.non_trainable_variables),
                 values(model.optimizer.variables), values(model.metrics_variables))
        images = np.zeros((batch, size, size, channels), np.float32)
        total = common.xla_flops(model.train_step, state, (images, images))
        return {"total": total, "conv_and_matmul": None, "by_type": None, "uncounted": None,
                "profiler_total_all_ops": None, "counter": "xla"}
    import tensorflow as tf

    spec = tf.TensorSpec((batch, size, size, channels), tf.float32)
    concrete = tf.function(model.train_step).get_concrete_function((spec, spec))
    counted = common.count_graph_flops(concrete)
    counted["profiler_total_all_ops"] = common.profiler_flops(concrete)
    return counted


def run_steps(model, data, steps: int) -> tuple:
    """Runs ``steps`` training steps on ``data`` (see `build`); returns (per-step wall seconds, user s, sys s)."""
    seconds = []
    user0, sys0 = common.cpu_seconds()
    for _ in range(steps):
        started = time.perf_counter()
        if isinstance(data, tuple):  # JAX
            logs = model.train_on_batch(*data, return_dict=True)
        else:
            logs = model.train_function(data)
        float(logs["g_loss"])  # the step has finished when its result is read back
        seconds.append(time.perf_counter() - started)
    user1, sys1 = common.cpu_seconds()
    return seconds, (user1 - user0) / steps, (sys1 - sys0) / steps


def benchmark(args) -> dict:
    import keras

    common.configure_threads(args.intra_op, args.inter_op)
    global TwoPassSSPNet
    TwoPassSSPNet = _two_pass_class()

    entries = []  # one per (preset, variant)
    for preset_name, batch_size, variant in ((p, b, v) for p in args.preset for b in args.batch_size
                                             for v in args.variants):
        started = time.perf_counter()
        model, data, config = build(preset_name, args.image_size, batch_size, variant, args.channels)
        built_s = time.perf_counter() - started
        flops = count_step_flops(model, config)
        entries.append({
            "preset": preset_name, "batch_size": batch_size, "variant": variant, "model": model, "data": data,
            "flops": flops, "build_s": built_s, "seconds": [], "user": [], "sys": [],
            "parameters": int(model.generator.count_params() + model.discriminator.count_params()),
        })
    # Warm-up after every model is built: building one (it seeds the global RNG) makes the functions
    # of those built before it trace again on their next call.
    for entry in entries:
        entry["warmup_s"] = [run_steps(entry["model"], entry["data"], 1)[0][0] for _ in range(args.warmup)]
        print(f"{entry['preset']} b{entry['batch_size']} {entry['variant']['name']}: built in {entry['build_s']:.1f} s, "
              f"warm-up steps {', '.join(f'{s:.2f}' for s in entry['warmup_s'])} s, "
              f"{entry['flops']['total'] / 1e9:.1f} GFLOP/step", flush=True)

    matmul_runs, matmul_cpu, loads = [], [], []
    for round_index in range(args.rounds):
        loads.append(common.load_average())
        rate = common.matmul_rate(args.matmul_size, runs=args.matmul_runs)
        matmul_runs.extend(rate["seconds"])
        matmul_cpu.extend(rate["cpu_seconds"])
        line = [f"round {round_index + 1}/{args.rounds} (load {loads[-1]:.2f}): matmul {rate['flops_per_s'] / 1e9:.1f} GFLOP/s"]
        order = entries if round_index % 2 == 0 else entries[::-1]
        for entry in order:
            seconds, user, system = run_steps(entry["model"], entry["data"], args.steps)
            entry["seconds"].extend(seconds)
            entry["user"].append(user)
            entry["sys"].append(system)
            line.append(f"{entry['preset']} b{entry['batch_size']} {entry['variant']['name']} "
                        f"{common.median(seconds):.3f} s")
        print("; ".join(line), flush=True)
    if args.profile:
        for entry in entries:
            entry["profile"] = common.op_time_breakdown(
                lambda entry=entry: run_steps(entry["model"], entry["data"], 1), runs=args.profile)
    matmul_flops = 2.0 * args.matmul_size**3
    matmul = {"size": args.matmul_size, "seconds": matmul_runs, "cpu_seconds": matmul_cpu,
              "flops_per_s": matmul_flops / common.median(matmul_runs),
              "flops_per_cpu_s": matmul_flops * len(matmul_cpu) / max(sum(matmul_cpu), 1e-9),
              "best_flops_per_s": matmul_flops / min(matmul_runs)}

    bf16_matmul = None
    if any(entry["variant"]["precision"] == "mixed_bfloat16" for entry in entries):
        bf16_matmul = common.matmul_rate(args.matmul_size, runs=args.matmul_runs, dtype="bfloat16")

    # Every variant of a (preset, batch) does the same arithmetic; their graphs differ only in how
    # element-wise work is split into ops (< 1% of the count), so all are rated against the count of
    # the first variant listed.
    reference = {}
    for entry in entries:
        reference.setdefault((entry["preset"], entry["batch_size"]), entry["flops"]["total"])
    rows = []
    for entry in entries:
        step = common.median(entry["seconds"])
        total = reference[(entry["preset"], entry["batch_size"])]
        rows.append({
            "backend": keras.backend.backend(),
            "preset": entry["preset"], "variant": entry["variant"]["name"],
            "precision": entry["variant"]["precision"], "jit_compile": entry["variant"]["jit_compile"],
            "two_pass": entry["variant"]["two_pass"],
            "image_size": args.image_size, "batch_size": entry["batch_size"], "channels": args.channels,
            "parameters": entry["parameters"],
            "step_s": step, "min_step_s": min(entry["seconds"]), "step_seconds": entry["seconds"],
            "images_per_s": 2 * entry["batch_size"] / step,
            "flops_per_step": total, "own_graph_flops_per_step": entry["flops"]["total"],
            "conv_matmul_flops_per_step": entry["flops"]["conv_and_matmul"],
            "flops_by_type": entry["flops"]["by_type"], "uncounted_op_types": entry["flops"]["uncounted"],
            "profiler_total_all_ops": entry["flops"]["profiler_total_all_ops"],
            "flops_per_s": total / step,
            "fraction_of_matmul": total / step / matmul["flops_per_s"],
            "user_s_per_step": common.median(entry["user"]), "sys_s_per_step": common.median(entry["sys"]),
            # Load-robust companion of fraction_of_matmul: FLOPs per CPU-second, step vs matmul.
            "cpu_fraction_of_matmul": (total / (common.median(entry["user"]) + common.median(entry["sys"])))
            / matmul["flops_per_cpu_s"],
            "build_s": entry["build_s"], "warmup_s": entry["warmup_s"],
            "op_seconds_per_step": entry.get("profile"),
        })
        entry["model"] = entry["data"] = None
    gc.collect()
    threads = None
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                   "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return {
        "benchmark": "train_step",
        "backend": keras.backend.backend(),
        "allocator": common.allocator(),
        "onednn": common.onednn_enabled(),
        "threads": threads,
        "matmul_float32": matmul,
        "matmul_bfloat16": bf16_matmul,
        "load_average_per_round": loads,
        "rounds": args.rounds, "steps_per_round": args.steps, "warmup": args.warmup,
        "environment": common.environment(),
        "results": rows,
    }


COLUMNS = [
    ("preset", "preset"), ("batch_size", "batch"), ("variant", "variant"),
    ("step_s", "s/step", "{:.3f}"), ("images_per_s", "img/s", "{:.2f}"),
    ("flops_per_step", "GFLOP/step", lambda v: f"{v / 1e9:.1f}"),
    ("flops_per_s", "GFLOP/s", lambda v: f"{v / 1e9:.1f}"),
    ("fraction_of_matmul", "of matmul", "{:.0%}"),
    ("user_s_per_step", "user s", "{:.2f}"), ("sys_s_per_step", "sys s", "{:.2f}"),
    ("cpu_fraction_of_matmul", "of matmul per CPU-s", "{:.0%}"),
]


def print_report(report: dict) -> None:
    matmul = report["matmul_float32"]
    first = report["results"][0]
    print("\n" + common.cpu_line())
    if report["backend"] == "tensorflow":
        settings = (f"oneDNN {'on' if report['onednn'] else 'off'}; threads intra {report['threads']['intra_op']} "
                    f"inter {report['threads']['inter_op']}")
    else:
        settings = f"XLA on {', '.join(report['environment']['jax_devices'])}"
    print(f"backend {report['backend']}; {first['image_size']}x{first['image_size']}x{first['channels']}, batch = LQ "
          f"images = HQ images per step; allocator {report['allocator']}; {settings}; {report['rounds']} rounds x "
          f"{report['steps_per_round']} steps; load {', '.join(f'{v:.2f}' for v in report['load_average_per_round'])}")
    print(f"float32 matmul {matmul['size']}^2: {matmul['flops_per_s'] / 1e9:.1f} GFLOP/s median "
          f"(best {matmul['best_flops_per_s'] / 1e9:.1f})"
          + (f"; bfloat16 matmul: {report['matmul_bfloat16']['flops_per_s'] / 1e9:.1f} GFLOP/s"
             if report.get("matmul_bfloat16") else ""))
    common.print_table(report["results"], COLUMNS)
    for row in report["results"]:
        if row.get("op_seconds_per_step"):
            print_profile(row)


#: Op types (after oneDNN's ``_Mkl``/``Native``/``Fused`` prefixes) that do the step's convolution /
#: matmul arithmetic; the rest is memory-bound work.
ARITHMETIC_OPS = ("Conv2D", "MatMul", "BatchMatMul", "Einsum")


def is_arithmetic(op_type: str) -> bool:
    """Whether ``op_type`` (e.g. ``_MklNativeConv2DBackpropFilter``) is a convolution or matmul."""
    return re.sub(r"^_Mkl(Native)?(Fused)?", "", op_type).startswith(ARITHMETIC_OPS)


def print_profile(row: dict, top: int = 14) -> None:
    """Op time per step by op type (TensorFlow profiler), and the share the arithmetic ops take."""
    profile = row["op_seconds_per_step"]
    total = sum(profile.values())
    arithmetic = sum(seconds for name, seconds in profile.items() if is_arithmetic(name))
    print(f"\n{row['preset']} b{row['batch_size']} {row['variant']}: op time {total:.3f} s per step "
          f"(wall {row['step_s']:.3f} s); convolutions/matmuls {arithmetic / total:.0%} of it")
    rows = [{"op": name, "ms": seconds * 1e3, "share": seconds / total} for name, seconds in list(profile.items())[:top]]
    rest = total - sum(seconds for seconds in list(profile.values())[:top])
    if rest > 0:
        rows.append({"op": "(other op types)", "ms": rest * 1e3, "share": rest / total})
    common.print_table(rows, [("op", "op type"), ("ms", "ms/step", "{:.1f}"), ("share", "share", "{:.1%}")])


def compare_children(args, settings) -> dict:
    """Runs this script once per setting (a child process each), alternating, ``--repeats`` times."""
    base = [os.path.abspath(__file__), "--preset", *args.preset, "--image-size", str(args.image_size),
            "--batch-size", *map(str, args.batch_size), "--channels", str(args.channels),
            "--variants", ",".join(v["name"] for v in args.variants), "--rounds", str(args.rounds),
            "--steps", str(args.steps), "--warmup", str(args.warmup), "--matmul-size", str(args.matmul_size),
            "--matmul-runs", str(args.matmul_runs)]
    results = []
    with tempfile.TemporaryDirectory(prefix="ssp-train-bench-") as scratch:
        for repeat in range(args.repeats):
            order = settings if repeat % 2 == 0 else settings[::-1]
            for label, extra, env in order:
                path = os.path.join(scratch, f"{len(results)}.json")
                print(f"--- {label} (repeat {repeat + 1}/{args.repeats})", flush=True)
                child = common.run_child(base + extra + ["--json", path], env=env, json_path=path)
                for row in child["results"]:
                    threads = child.get("threads")
                    row = dict(row, setting=label, repeat=repeat + 1, allocator=child["allocator"],
                               library=child["environment"]["ssp_keras"],
                               onednn=child["onednn"], backend=child.get("backend", "tensorflow"),
                               threads=f"{threads['intra_op']}x{threads['inter_op']}" if threads else "XLA",
                               matmul_flops_per_s=child["matmul_float32"]["flops_per_s"],
                               load_average=common.median(child["load_average_per_round"]))
                    results.append(row)
    # One row per (setting, preset, variant): medians over repeats.
    merged = {}
    for row in results:
        merged.setdefault((row["setting"], row["preset"], row["batch_size"], row["variant"]), []).append(row)
    rows = []
    for (setting, preset_name, batch_size, variant), group in merged.items():
        rows.append({
            "setting": setting, "preset": preset_name, "batch_size": batch_size, "variant": variant,
            "backend": group[0].get("backend", "tensorflow"),
            "allocator": group[0]["allocator"], "onednn": group[0]["onednn"], "threads": group[0]["threads"],
            "library": group[0]["library"],
            "step_s": common.median(r["step_s"] for r in group),
            "images_per_s": common.median(r["images_per_s"] for r in group),
            "flops_per_step": group[0]["flops_per_step"],
            "flops_per_s": common.median(r["flops_per_s"] for r in group),
            "fraction_of_matmul": common.median(r["fraction_of_matmul"] for r in group),
            "matmul_flops_per_s": common.median(r["matmul_flops_per_s"] for r in group),
            "user_s_per_step": common.median(r["user_s_per_step"] for r in group),
            "sys_s_per_step": common.median(r["sys_s_per_step"] for r in group),
            "cpu_fraction_of_matmul": common.median(r.get("cpu_fraction_of_matmul", float("nan")) for r in group),
            "repeats_step_s": [r["step_s"] for r in group],
            "load_average": common.median(r["load_average"] for r in group),
        })
    return {"benchmark": "train_step", "comparison": [s[0] for s in settings], "results": rows, "runs": results}


def parse_setting(text: str, args) -> tuple:
    """``(label, extra argv, env)`` of a --compare setting such as ``tcmalloc+onednn+threads=2x1``,
    ``jax`` or ``tensorflow+checkout=/path/to/another/checkout``."""
    env = common.tcmalloc_env(args.tcmalloc, required=not args.dry_run)
    env["KERAS_BACKEND"] = common.keras_backend()
    extra = []
    for token in text.split("+"):
        if token in ("tensorflow", "jax"):
            env["KERAS_BACKEND"] = token
        elif token.startswith("checkout="):
            # That checkout's library under this script (its own benchmarks may predate this one).
            checkout = os.path.abspath(token[len("checkout="):])
            if not os.path.isdir(os.path.join(checkout, "ssp_keras")):
                raise SystemExit(f"--compare: {checkout} holds no ssp_keras package")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, env.get("PYTHONPATH", "")]))
        elif token in ("glibc", "tcmalloc"):
            env = common.tcmalloc_env(token == "tcmalloc", env, required=not args.dry_run)
        elif token in ("onednn", "eigen"):
            env["TF_ENABLE_ONEDNN_OPTS"] = "1" if token == "onednn" else "0"
        elif token.startswith("threads="):
            intra, inter = (int(v) for v in token[len("threads="):].lower().split("x"))
            extra += ["--intra-op", str(intra), "--inter-op", str(inter)]
        else:
            raise SystemExit(f"--compare: unknown setting {token!r} (glibc, tcmalloc, onednn, eigen, threads=IxJ, "
                             "tensorflow, jax, checkout=PATH)")
    return text, extra, env


COMPARE_COLUMNS = [("setting", "setting")] + COLUMNS[:3] + [
    ("matmul_flops_per_s", "matmul GFLOP/s", lambda v: f"{v / 1e9:.1f}")] + COLUMNS[3:] + [
    ("repeats_step_s", "s/step per repeat", lambda v: " ".join(f"{s:.3f}" for s in v)),
    ("load_average", "load", "{:.2f}")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", nargs="+", choices=("paper", "lite"), default=["paper"])
    parser.add_argument("--image-size", type=int, default=256, help="crop side (multiple of 32)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[4],
                        help="images per domain (LQ and HQ each); several values: one model each, timed interleaved")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--variants", type=lambda text: [parse_variant(v) for v in text.split(",")],
                        default=[parse_variant("concat")],
                        help="comma-separated variants, tokens joined by '+': concat | two-pass, xla, bf16, "
                             "batch-norm, zero-pad, keras-kernels, keras-adam (see the module docstring)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                        help="after timing, profile STEPS steps of each variant with the TensorFlow profiler "
                             "and print op time by op type (0 = off)")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-runs", type=int, default=5, help="matmul runs per round")
    parser.add_argument("--onednn", choices=("on", "off", "default"), default="default",
                        help="TF_ENABLE_ONEDNN_OPTS=1 / 0 for this run (TensorFlow's default leaves oneDNN off "
                             "on CPUs without AVX-512 VNNI/BF16 or AMX)")
    parser.add_argument("--compare", metavar="SETTING,...",
                        help="run one child process per process-wide setting, alternating, --repeats times; "
                             "a setting joins with '+': glibc | tcmalloc, onednn | eigen, threads=IxJ "
                             "(e.g. glibc,tcmalloc,tcmalloc+onednn)")
    parser.add_argument("--repeats", type=int, default=2, help="children per setting for --compare")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=common.keras_backend(),
                        help="Keras backend of this run (default: $KERAS_BACKEND, else tensorflow); --compare "
                             "takes tensorflow and jax as settings to compare both")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.image_size % 32:
        parser.error("--image-size must be a multiple of 32")
    if args.profile and args.backend != "tensorflow":
        parser.error("--profile uses the TensorFlow profiler (--backend tensorflow)")
    settings = [parse_setting(text, args) for text in args.compare.split(",")] if args.compare else None
    if args.dry_run:
        steps = (f"presets {' '.join(args.preset)} at {args.image_size}^2, batch {args.batch_size}, variants "
                 f"{', '.join(v['name'] for v in args.variants)}: {args.warmup} warm-up steps, {args.rounds} rounds "
                 f"of {args.steps} timed steps")
        if settings:
            steps += (f"; in child processes per setting ({', '.join(label for label, _, _ in settings)}), "
                      f"{args.repeats} repeats, alternating")
        else:
            steps += f" on {args.backend}"
        return common.dry_run(args, steps)
    if args.max_load:
        common.wait_for_quiet(args.max_load, args.wait)

    if settings:
        report = compare_children(args, settings)
        print()
        common.print_table(report["results"], COMPARE_COLUMNS)
    else:
        report = benchmark(args)
        print_report(report)
    if args.json:
        common.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
