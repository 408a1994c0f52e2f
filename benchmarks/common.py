"""Helpers shared by the hand-run benchmarks in this folder.

Import it from a benchmark script (``python benchmarks/NAME.py`` puts this folder on ``sys.path``):

    import common                         # or: from benchmarks import common
    common.reexec_with_tcmalloc_if_asked()  # first, before TensorFlow or NumPy are imported

What is here:

* allocator: :func:`reexec_with_tcmalloc_if_asked` re-executes the script with
  ``LD_PRELOAD=libtcmalloc_minimal.so.4`` when ``--tcmalloc`` is on its command line (Debian/Ubuntu:
  ``apt-get install libtcmalloc-minimal4``); :func:`allocator` says which allocator the process runs on.
* environment: :func:`environment` (CPU model and flags, cores, load average, versions, allocator,
  thread settings) for the JSON reports; :func:`load_average`, :func:`wait_for_quiet`.
* backend: :func:`apply_backend_flag` sets ``KERAS_BACKEND`` from ``--backend tensorflow|jax``
  (before Keras loads); :func:`keras_backend` says which one this process runs.
* threads: :func:`configure_threads` (TensorFlow intra/inter-op pools, before any op runs).
* hardware reference: :func:`matmul_rate`, the float32 (or bfloat16) matrix-multiply rate measured
  in this process with the backend's own matmul (TensorFlow's, or a jitted ``jnp.matmul`` on JAX;
  median of several runs), the yardstick of "fraction of peak".
* FLOPs: :func:`count_graph_flops`, the floating-point operations of a traced ``tf.function``
  graph, counted op by op from TensorFlow's registered statistics (the numbers
  ``tf.compat.v1.profiler`` adds up), on the ops that actually run (dead gradient branches are
  excluded), and :func:`profiler_flops`, the profiler's own raw total for comparison; on JAX,
  :func:`xla_flops`, XLA's cost analysis of a compiled function.
* timing and output: :func:`median`, :func:`print_table`, :func:`write_json`, :func:`add_common_arguments`
  and :func:`apply_common_arguments`; :func:`dry_run` (every script's ``--dry-run``: arguments
  checked, the plan printed, nothing built).

Nothing here imports TensorFlow at module level, so the tcmalloc re-exec can come first.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

_REEXEC_MARK = "SSP_BENCH_TCMALLOC_REEXEC"


# ------------------------------------------------------------------------------------ allocator
# Where tcmalloc is looked for ($SSP_TCMALLOC, then Debian's libtcmalloc-minimal4) is the library's.
from ssp_keras.runtime import cpu_flags, native_bfloat16, tcmalloc_loaded, tcmalloc_path  # noqa: E402  (no TensorFlow)


def allocator() -> str:
    """``"tcmalloc"`` when libtcmalloc is mapped into this process, else ``"glibc"``."""
    return "tcmalloc" if tcmalloc_loaded() else "glibc"


def reexec_with_tcmalloc_if_asked(argv: Optional[Sequence[str]] = None, flag: str = "--tcmalloc") -> None:
    """Re-executes this script with tcmalloc preloaded if ``flag`` is in argv and it is not yet loaded.

    Call it before importing TensorFlow/NumPy. Exits with an error message when tcmalloc is asked
    for but not installed. The flag stays on the command line, so the re-executed script sees it.
    """
    argv = list(sys.argv if argv is None else argv)
    if flag not in argv or allocator() == "tcmalloc" or "--dry-run" in argv:  # a dry run allocates nothing
        return
    if os.environ.get(_REEXEC_MARK):
        raise SystemExit(f"{flag}: preloading tcmalloc did not take effect (LD_PRELOAD={os.environ.get('LD_PRELOAD')!r})")
    library = tcmalloc_path()
    if library is None:
        raise SystemExit(f"{flag}: libtcmalloc_minimal.so.4 not found; install it (Debian/Ubuntu: "
                         "apt-get install libtcmalloc-minimal4) or set SSP_TCMALLOC=/path/to/it")
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    env[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(sys.executable, [sys.executable] + argv, env)


def tcmalloc_env(enabled: bool, base: Optional[dict] = None, required: bool = True) -> dict:
    """A copy of ``base`` (default: os.environ) with tcmalloc added to or removed from LD_PRELOAD.

    Exits when tcmalloc is asked for and not installed, unless not ``required`` (a dry run: the
    environment is only described, and names the library by its file name,
    libtcmalloc_minimal.so.4, where no installed path was found)."""
    env = dict(os.environ if base is None else base)
    kept = [part for part in env.get("LD_PRELOAD", "").split(":") if part and "tcmalloc" not in part]
    if enabled:
        library = tcmalloc_path()
        if library is None and required:
            raise SystemExit("tcmalloc asked for but libtcmalloc_minimal.so.4 is not installed")
        kept.insert(0, library or "libtcmalloc_minimal.so.4")
    if kept:
        env["LD_PRELOAD"] = ":".join(kept)
    else:
        env.pop("LD_PRELOAD", None)
    env.pop(_REEXEC_MARK, None)
    return env


def _flag_value(argv: Optional[Sequence[str]], flag: str) -> Optional[str]:
    """The value of ``flag VALUE`` or ``flag=VALUE`` in argv (default: sys.argv), read before argparse runs."""
    argv = list(sys.argv if argv is None else argv)
    value = None
    for index, item in enumerate(argv):
        if item == flag and index + 1 < len(argv):
            value = argv[index + 1]
        elif item.startswith(flag + "="):
            value = item.split("=", 1)[1]
    return value


def apply_onednn_flag(argv: Optional[Sequence[str]] = None, flag: str = "--onednn") -> Optional[str]:
    """Sets ``TF_ENABLE_ONEDNN_OPTS`` from ``--onednn on|off|default`` in argv; call before importing TensorFlow.

    TensorFlow reads the variable once, when it loads. Its default turns oneDNN's kernels on only on
    CPUs with AVX-512 VNNI/BF16 or AMX; on AVX2-only CPUs (e.g. AMD Zen 3) they stay off unless
    asked for. Returns the value set (None when left alone).
    """
    value = _flag_value(argv, flag)
    if value in ("on", "off"):
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if value == "on" else "0"
        return os.environ["TF_ENABLE_ONEDNN_OPTS"]
    return None


def apply_backend_flag(argv: Optional[Sequence[str]] = None, flag: str = "--backend") -> str:
    """Sets ``KERAS_BACKEND`` from ``--backend tensorflow|jax`` in argv (else keeps the environment's,
    else ``tensorflow``); call before anything imports Keras. Returns the backend."""
    backend = _flag_value(argv, flag) or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in ("tensorflow", "jax"):
        raise SystemExit(f"{flag}: tensorflow or jax, got {backend!r}")
    os.environ["KERAS_BACKEND"] = backend
    return backend


def keras_backend() -> str:
    """The Keras backend of this process (``KERAS_BACKEND`` as `apply_backend_flag` left it)."""
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def onednn_enabled() -> Optional[bool]:
    """Whether TensorFlow's oneDNN kernels are on in this process (None if TensorFlow does not say,
    or is not loaded: a JAX process)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


# ---------------------------------------------------------------------------------- environment
def load_average() -> float:
    """The 1-minute load average (0.0 where the OS does not say)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return 0.0


def wait_for_quiet(max_load: float, timeout_s: float, poll_s: float = 15.0, log: Callable = print) -> float:
    """Waits until the 1-minute load average is below ``max_load`` or ``timeout_s`` passed; returns it."""
    deadline = time.monotonic() + timeout_s
    load = load_average()
    while load >= max_load and time.monotonic() < deadline:
        log(f"load average {load:.2f} >= {max_load}; waiting ({deadline - time.monotonic():.0f} s left)")
        time.sleep(poll_s)
        load = load_average()
    return load


def cpu_info() -> dict:
    """Model name, logical CPUs usable by this process, and the SIMD flags that matter here."""
    model, flags = platform.processor() or platform.machine(), cpu_flags()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle
                          if line.startswith("model name") and ":" in line), model)
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "avx_vnni")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "cpus": cpus, "flags": {name: name in flags for name in wanted},
            "native_bfloat16": native_bfloat16(flags)}


def cpu_line() -> str:
    """One line for a benchmark's header: CPU model, usable CPUs, the tracked SIMD flags it has,
    whether bfloat16 is native (emulated bfloat16 is about 10x slower), allocator, load average."""
    info = cpu_info()
    flags = " ".join(name for name, present in info["flags"].items() if present) or "none of the tracked"
    bfloat16 = "yes" if info["native_bfloat16"] else "no (emulated: bfloat16 is slow)"
    return (f"CPU: {info['model']} ({info['cpus']} CPUs); flags: {flags}; native bfloat16: {bfloat16}; "
            f"allocator {allocator()}; load average {load_average():.2f}")


def environment() -> dict:
    """What a reader needs to compare a JSON report with another one."""
    info = {
        "cpu": cpu_info(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "allocator": allocator(),
        "load_average_at_start": round(load_average(), 2),
        "ssp_keras": library_source(),
        "env": {key: os.environ[key] for key in sorted(os.environ)
                if key.startswith(("TF_", "OMP_", "KMP_", "ONEDNN", "DNNL")) or key == "LD_PRELOAD"},
    }
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn_enabled"] = onednn_enabled()
        info["threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                           "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    if "keras" in sys.modules:
        import keras

        info["keras"] = keras.__version__
        info["keras_backend"] = keras.backend.backend()
    if "jax" in sys.modules:
        import jax

        info["jax"] = jax.__version__
        info["jax_devices"] = [str(device) for device in jax.devices()]
    return info


def configure_threads(intra_op: int = 0, inter_op: int = 0) -> None:
    """TensorFlow's thread pools (0 = TensorFlow's default, one thread per core); call before any op.
    Both 0: nothing to do (TensorFlow is not imported)."""
    if not intra_op and not inter_op:
        return
    import tensorflow as tf

    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)


# --------------------------------------------------------------------------- hardware yardstick
def matmul_rate(size: int = 2048, runs: int = 7, dtype: str = "float32", warmup: int = 2) -> dict:
    """The measured rate of a ``size x size`` by ``size x size`` matmul in this process.

    TensorFlow's ``tf.linalg.matmul`` (eagerly, on the default device, with the process's thread
    settings), or, in a JAX process (`keras_backend`), a jitted ``jnp.matmul`` on JAX's default
    device (a GPU where there is one). Each run is timed to completion (the result is read back).
    Returns ``{"flops_per_s": median, "best_flops_per_s", "seconds": [...], ...}``; the FLOP count
    is ``2 * size**3``.
    """
    if keras_backend() == "jax":
        import jax
        import jax.numpy as jnp

        a = jax.random.uniform(jax.random.key(1), (size, size), jnp.float32).astype(dtype)
        b = jax.random.uniform(jax.random.key(2), (size, size), jnp.float32).astype(dtype)
        multiply = jax.jit(jnp.matmul)
        run = lambda: multiply(a, b).block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf

        a = tf.cast(tf.random.stateless_uniform((size, size), seed=(1, 2), dtype=tf.float32), dtype)
        b = tf.cast(tf.random.stateless_uniform((size, size), seed=(3, 4), dtype=tf.float32), dtype)
        run = lambda: tf.linalg.matmul(a, b)[0, 0].numpy()  # noqa: E731  (waits for the whole product)
    seconds, cpu = [], []
    for index in range(warmup + runs):
        cpu_started = sum(cpu_seconds())
        started = time.perf_counter()
        run()
        if index >= warmup:
            seconds.append(time.perf_counter() - started)
            cpu.append(sum(cpu_seconds()) - cpu_started)
    flops = 2.0 * size**3
    return {
        "size": size,
        "dtype": dtype,
        "flops": flops,
        "seconds": [round(s, 5) for s in seconds],
        "cpu_seconds": [round(s, 5) for s in cpu],
        "flops_per_s": flops / statistics.median(seconds),
        "best_flops_per_s": flops / min(seconds),
        # Load-robust: FLOPs per CPU-second (user + system, all threads) of this process.
        "flops_per_cpu_s": flops * len(cpu) / max(sum(cpu), 1e-9),
    }


# ------------------------------------------------------------------------------------- FLOPs
def _live_operations(graph) -> list:
    """Operations of ``graph`` that outputs or stateful control outputs depend on (the ones that run)."""
    roots = [tensor.op for tensor in getattr(graph, "outputs", [])]
    roots += list(getattr(graph, "control_outputs", []))
    if not roots:
        return list(graph.get_operations())
    seen, stack = set(), list(roots)
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(tensor.op for tensor in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in seen]


def _function_graphs(graph):
    """The graph and the graphs of the functions it calls (a tf.function may nest others)."""
    yield graph
    for function in getattr(graph, "_functions", {}).values():
        inner = getattr(function, "graph", None)
        if inner is not None:
            yield from _function_graphs(inner)


def count_graph_flops(concrete_function) -> dict:
    """Floating-point operations of one call of a concrete ``tf.function``, counted from its graph.

    Each op's count is TensorFlow's registered ``flops`` statistic (``ops.get_stats_for_node_def``,
    what ``tf.compat.v1.profiler`` sums: 2 per multiply-add for convolutions and matrix products,
    forward and backward-input/backward-filter alike; one per element for element-wise ops). Only
    ops that the function's outputs or side effects depend on are counted, so gradient branches the
    step computes and then drops (e.g. D's kernel gradients inside G's tape) are left out.
    The input shapes must be static. Ops with no registered statistic (batch-norm, einsum, resize,
    ...) count 0 and are listed by type in ``uncounted``.

    Returns ``{"total": int, "by_type": {type: flops}, "conv_and_matmul": int, "uncounted": {type: n}}``.
    """
    from tensorflow.python.framework import ops as tf_ops

    by_type: Dict[str, int] = collections.Counter()
    uncounted: Dict[str, int] = collections.Counter()
    for graph in _function_graphs(concrete_function.graph):
        for op in _live_operations(graph):
            try:
                stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
            except (ValueError, TypeError):
                stats = None
            if stats is not None and stats.value:
                by_type[op.type] += int(stats.value)
            elif any(t.dtype.is_floating for t in op.outputs):
                uncounted[op.type] += 1
    heavy = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNative",
             "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv3D")
    return {
        "total": int(sum(by_type.values())),
        "conv_and_matmul": int(sum(v for k, v in by_type.items() if k in heavy)),
        "by_type": dict(sorted(by_type.items(), key=lambda item: -item[1])),
        "uncounted": dict(sorted(uncounted.items(), key=lambda item: -item[1])),
    }


def xla_flops(function, *args) -> Optional[float]:
    """XLA's count of the floating-point operations of ``jax.jit(function)(*args)`` (its cost
    analysis of the lowered program, which needs no compilation: 2 per multiply-add in
    convolutions and matmuls, one per element in element-wise ops), or None where XLA does not say."""
    import jax

    analysis = jax.jit(function).lower(*args).cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX: one dict per program
        analysis = analysis[0] if analysis else {}
    return float(analysis["flops"]) if analysis and "flops" in analysis else None


def profiler_flops(concrete_function) -> Optional[int]:
    """``tf.compat.v1.profiler``'s float_operation total over the whole graph (dead branches included)."""
    import tensorflow as tf

    options = (tf.compat.v1.profiler.ProfileOptionBuilder(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
               .with_empty_output().build())
    try:
        result = tf.compat.v1.profiler.profile(concrete_function.graph, options=options)
    except Exception:  # noqa: BLE001 - the profiler is an optional cross-check
        return None
    return int(result.total_float_ops)


def op_time_breakdown(run: Callable[[], object], runs: int = 3) -> Dict[str, float]:
    """Seconds per call of ``run()`` spent in each TensorFlow op type, from the TensorFlow profiler.

    ``run`` is called ``runs`` times under ``tf.profiler.experimental``; the host trace's op events
    (named ``scope/name:OpType`` on the ``tf_Compute`` threads) are summed by type. Ops on different
    inter-op threads may overlap, so the total can exceed wall time: it is op time, close to CPU
    time over the intra-op threads. Returns ``{op type: seconds per call}``, largest first.
    """
    import glob
    import tempfile

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        try:
            for _ in range(runs):
                run()
        finally:
            tf.profiler.experimental.stop()
        traces = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
        space = xplane_pb2.XSpace()
        with open(traces[0], "rb") as handle:
            space.ParseFromString(handle.read())
    totals: Dict[str, float] = {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if not line.name.startswith("tf_"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or "::" in name:  # executor and thread-pool bookkeeping, not ops
                    continue
                op_type = name.rsplit(":", 1)[1]
                totals[op_type] = totals.get(op_type, 0.0) + event.duration_ps / 1e12 / runs
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


# ------------------------------------------------------------------------------ timing, output
def timed(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``function()`` over ``repeats`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return median(durations)


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def human(value: float, unit: str = "") -> str:
    """1.23e10 -> '12.3 G' (SI prefixes)."""
    for threshold, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def print_table(rows: List[dict], columns: Sequence, out=None) -> str:
    """Prints rows as a Markdown table and returns it.

    ``columns``: ``(key, header)`` or ``(key, header, format)``, format a ``str.format`` spec
    (``"{:.3f}"``) or a callable; missing values print as ``-``.
    """
    out = out or sys.stdout
    headers, cells = [], []
    for column in columns:
        headers.append(column[1])
    for row in rows:
        line = []
        for column in columns:
            key, fmt = column[0], (column[2] if len(column) > 2 else "{}")
            value = row.get(key)
            if value is None:
                line.append("-")
            elif callable(fmt):
                line.append(fmt(value))
            else:
                line.append(fmt.format(value))
        cells.append(line)
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    text = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
            "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    text += ["| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |" for line in cells]
    table = "\n".join(text)
    print(table, file=out, flush=True)
    return table


def write_json(path: str, report: dict) -> None:
    """Writes ``report`` (plus ``environment()`` under ``"environment"`` if absent) atomically."""
    report = dict(report)
    report.setdefault("environment", environment())
    report.setdefault("command", " ".join([os.path.basename(sys.executable)] + sys.argv))
    text = json.dumps(report, indent=2, default=_json_default) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def add_step_arguments(parser, preset: str = "paper", image_size: int = 256) -> None:
    """``--preset``, ``--image-size``, ``--batch-size`` (per domain), ``--channels`` of a training step."""
    parser.add_argument("--preset", choices=("lite", "paper"), default=preset)
    parser.add_argument("--image-size", type=int, default=image_size, help="crop side (multiple of 32)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per domain (LQ and HQ each)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)


def add_dry_run_argument(parser) -> None:
    """``--dry-run``: parse and check the arguments, print what would run, build nothing, exit 0."""
    parser.add_argument("--dry-run", action="store_true",
                        help="check the arguments, print what would run and exit (builds and imports nothing heavy)")


def dry_run(args, plan: str) -> int:
    """What a ``--dry-run`` prints: the script, ``plan`` (a sentence on what it would measure) and
    every parsed argument. Returns 0, the exit status."""
    script = os.path.basename(sys.argv[0]) or "benchmark"
    settings = {key: value for key, value in sorted(vars(args).items()) if key != "dry_run"}
    print(f"dry run of {script}: would run {plan}")
    print("arguments: " + json.dumps(settings, default=str, sort_keys=True))
    return 0


def add_common_arguments(parser) -> None:
    """``--json``, ``--tcmalloc``, ``--intra-op``, ``--inter-op``, ``--max-load``, ``--wait``, ``--dry-run``."""
    add_dry_run_argument(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    parser.add_argument("--tcmalloc", action="store_true",
                        help="re-run this script with libtcmalloc_minimal.so.4 preloaded (LD_PRELOAD)")
    parser.add_argument("--intra-op", type=int, default=0, help="TensorFlow intra-op threads (0 = default)")
    parser.add_argument("--inter-op", type=int, default=0, help="TensorFlow inter-op threads (0 = default)")
    parser.add_argument("--max-load", type=float, default=0.0,
                        help="wait (up to --wait seconds) until the 1-min load average is below this")
    parser.add_argument("--wait", type=float, default=600.0, help="longest wait for --max-load, seconds")


def apply_common_arguments(args) -> None:
    """Acts on `add_common_arguments`' thread and load options: sets the TensorFlow thread pools
    (before any op runs) and, with ``--max-load``, waits for a quiet machine."""
    configure_threads(args.intra_op, args.inter_op)
    if args.max_load:
        wait_for_quiet(args.max_load, args.wait)


def run_child(argv: Sequence[str], env: Optional[dict] = None, json_path: Optional[str] = None) -> Optional[dict]:
    """Runs ``python argv...`` (e.g. this script with other options), streams its output, returns its JSON."""
    command = [sys.executable] + list(argv)
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"child benchmark failed ({completed.returncode}): {' '.join(command)}")
    if json_path and os.path.isfile(json_path):
        with open(json_path, encoding="utf-8") as handle:
            return json.load(handle)
    return None


def cpu_seconds() -> tuple:
    """(user, system) CPU seconds of this process so far (all threads)."""
    times = os.times()
    return times.user, times.system


def library_source() -> dict:
    """Where this process's ``ssp_keras`` comes from: its folder and that checkout's commit (a
    ``checkout=PATH`` comparison shows here which library each child ran)."""
    import ssp_keras

    root = os.path.dirname(os.path.dirname(os.path.abspath(ssp_keras.__file__)))
    return {"path": root, "commit": git_describe(root)}


def git_describe(root: str) -> Optional[str]:
    """The checked-out commit (read-only), for the report."""
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


__all__ = [name for name in dir() if not name.startswith("_") and name not in {
    "annotations", "collections", "json", "os", "platform", "re", "statistics", "subprocess", "sys", "time",
    "Callable", "Dict", "Iterable", "List", "Optional", "Sequence"}]
