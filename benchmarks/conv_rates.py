"""Every convolution and matmul of the training step, timed alone, against the float32 matmul rate.

Run by hand (not part of the test suite):

    python benchmarks/conv_rates.py [--tcmalloc] [--preset paper] [--image-size 256] [--batch-size 4]
        [--repeats 5] [--steps 3] [--winograd] [--xla]

Answers "how fast could the step be if everything but its arithmetic were free?". The float32
step (built as `benchmarks/train_step.py` builds ``concat``) is traced; each distinct
``Conv2D`` / ``Conv2DBackpropInput`` / ``Conv2DBackpropFilter`` / ``MatMul`` of it (shapes,
strides, padding) is run alone on random data, median of ``--repeats`` calls, and weighted by how
often the step holds it. Printed:

* by kernel size and stride: GFLOP per step, ms per step, rate as a fraction of the 2048^2 float32
  matmul rate measured in the same process;
* the signatures losing the most time against that rate;
* the sum (the step's arithmetic alone) against the whole step, timed in the same process.

``--xla`` also runs every signature as XLA compiles it on JAX's CPU back end (`xla_runner`:
``jax.lax.conv_general_dilated`` and its two gradients, ``jnp.matmul``; JAX in the same process,
timed alternately with TensorFlow's kernel), and adds XLA's ms per step and rate to the first
table: whether the JAX backend's CPU convolutions are slower than TensorFlow's oneDNN ones.

``--winograd`` adds one more table: for the step's 3x3 stride-1 convolutions, the direct kernel
against a Winograd F(2x2, 3x3) formulation written in TensorFlow ops (`winograd_conv2d`: 2.25x
fewer multiplications, paid for with input and output transforms that are memory-bound), forward
and forward + backward (the backward by autodiff of the same ops), with its largest relative error.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ARITHMETIC_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul")

# Winograd F(2x2, 3x3) (Lavin & Gray, 2016): Y = A^T [(G g G^T) * (B^T d B)] A per 4x4 input tile d.
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)


def collect_signatures(concrete_function) -> dict:
    """``{(op type, input shapes, attributes): [count, FLOPs of one]}`` over a traced function's graphs."""
    from tensorflow.python.framework import ops as tf_ops

    signatures = {}
    for graph in common._function_graphs(concrete_function.graph):
        for op in common._live_operations(graph):
            if op.type not in ARITHMETIC_OPS:
                continue
            attributes = []
            for name in ("strides", "padding", "transpose_a", "transpose_b"):
                try:
                    value = op.get_attr(name)
                except ValueError:
                    continue
                attributes.append((name, tuple(value) if isinstance(value, list) else value))
            if op.type.startswith("Conv2DBackprop"):  # the shape it computes: of the input or of the kernel
                attributes.append(("sizes", tuple(op.outputs[0].shape.as_list())))
            key = (op.type, tuple(tuple(t.shape.as_list()) for t in op.inputs), tuple(attributes))
            statistics = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
            entry = signatures.setdefault(key, [0, int(statistics.value or 0)])
            entry[0] += 1
    return signatures


def kernel_and_stride(key) -> tuple:
    """(kernel side, stride) of a signature; ("matmul", 1) for a MatMul."""
    op_type, shapes, attributes = key
    if op_type == "MatMul":
        return "matmul", 1
    attributes = dict(attributes)
    kernel_shape = attributes["sizes"] if op_type == "Conv2DBackpropFilter" else shapes[1]
    return kernel_shape[0], attributes["strides"][1]


def signature_runner(key):
    """A ``tf.function`` running the signature's op once on random data (its result read back)."""
    import tensorflow as tf

    op_type, shapes, attributes = key
    attributes = dict(attributes)

    def random(shape):
        return tf.random.stateless_normal(shape, seed=(1, len(shape)))

    if op_type == "Conv2D":
        x, w = random(shapes[0]), random(shapes[1])
        call = lambda: tf.raw_ops.Conv2D(input=x, filter=w, strides=attributes["strides"],  # noqa: E731
                                         padding=attributes["padding"])
    elif op_type == "Conv2DBackpropInput":
        w, dy = random(shapes[1]), random(shapes[2])
        call = lambda: tf.raw_ops.Conv2DBackpropInput(  # noqa: E731
            input_sizes=attributes["sizes"], filter=w, out_backprop=dy, strides=attributes["strides"],
            padding=attributes["padding"])
    elif op_type == "Conv2DBackpropFilter":
        x, dy = random(shapes[0]), random(shapes[2])
        call = lambda: tf.raw_ops.Conv2DBackpropFilter(  # noqa: E731
            input=x, filter_sizes=attributes["sizes"], out_backprop=dy, strides=attributes["strides"],
            padding=attributes["padding"])
    else:
        a, b = random(shapes[0]), random(shapes[1])
        call = lambda: tf.linalg.matmul(a, b, transpose_a=attributes["transpose_a"],  # noqa: E731
                                        transpose_b=attributes["transpose_b"])
    # Reading back one element waits for the op without timing a copy of its whole result.
    function = tf.function(lambda: tf.reshape(call(), [-1])[0], autograph=False)
    return lambda: function().numpy()


def xla_runner(key):
    """The signature's op as a jitted JAX function on random data (None for a padding XLA does not
    take as it is, such as TensorFlow's EXPLICIT)."""
    import jax
    import jax.numpy as jnp

    op_type, shapes, attributes = key
    attributes = dict(attributes)
    padding = attributes.get("padding", b"VALID")
    padding = padding.decode() if isinstance(padding, bytes) else padding
    if padding not in ("VALID", "SAME"):
        return None
    numbers = ("NHWC", "HWIO", "NHWC")

    def random(shape):
        return jax.random.normal(jax.random.key(len(shape)), shape, jnp.float32)

    def convolve(x, w):
        return jax.lax.conv_general_dilated(x, w, attributes["strides"][1:3], padding, dimension_numbers=numbers)

    if op_type == "Conv2D":
        function, arguments = convolve, (random(shapes[0]), random(shapes[1]))
    elif op_type == "Conv2DBackpropInput":
        zeros = jnp.zeros(attributes["sizes"], jnp.float32)
        function = lambda w, dy: jax.vjp(lambda x: convolve(x, w), zeros)[1](dy)[0]  # noqa: E731
        arguments = (random(shapes[1]), random(shapes[2]))
    elif op_type == "Conv2DBackpropFilter":
        zeros = jnp.zeros(attributes["sizes"], jnp.float32)
        function = lambda x, dy: jax.vjp(lambda w: convolve(x, w), zeros)[1](dy)[0]  # noqa: E731
        arguments = (random(shapes[0]), random(shapes[2]))
    else:
        def function(a, b):
            a = a.T if attributes["transpose_a"] else a
            return jnp.matmul(a, b.T if attributes["transpose_b"] else b)

        arguments = (random(shapes[0]), random(shapes[1]))
    compiled = jax.jit(function)
    return lambda: compiled(*arguments).block_until_ready()


# ------------------------------------------------------------------------------------ Winograd
def _even_odd(x, axis: int):
    """x's even and odd indices along ``axis`` (its length even)."""
    import tensorflow as tf

    shape = x.shape.as_list()
    pairs = tf.reshape(x, shape[:axis] + [shape[axis] // 2, 2] + shape[axis + 1:])
    return tf.gather(pairs, 0, axis=axis + 1), tf.gather(pairs, 1, axis=axis + 1)


def _input_rows(x, axis: int) -> list:
    """``B^T d`` along ``axis`` for every tile at once: the 4 transformed rows, tiles of 4 with step 2."""
    import tensorflow as tf

    even, odd = _even_odd(x, axis)
    begin, size = [0] * even.shape.rank, [-1] * even.shape.rank
    size[axis] = even.shape[axis] - 1
    first = lambda t: tf.slice(t, begin, size)  # noqa: E731
    second = lambda t: tf.slice(t, begin[:axis] + [1] + begin[axis + 1:], size)  # noqa: E731
    d0, d1, d2, d3 = first(even), first(odd), second(even), second(odd)
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def winograd_conv2d(x, kernel):
    """``tf.nn.conv2d(x, kernel, 1, "VALID")`` by Winograd F(2x2, 3x3), in TensorFlow ops.

    x: ``[N, H, W, C]`` with H - 2 and W - 2 even; kernel: ``[3, 3, C, C_out]``. Returns
    ``[N, H - 2, W - 2, C_out]``, equal to the direct convolution up to float32 rounding. The 16
    products per tile are one batched matmul ``[16, tiles, C] @ [16, C, C_out]``.
    """
    import tensorflow as tf

    n, height, width, channels = x.shape.as_list()
    if (height - 2) % 2 or (width - 2) % 2 or tuple(kernel.shape[:2]) != (3, 3):
        raise ValueError(f"winograd_conv2d needs a 3x3 kernel and even output sides, got {x.shape} * {kernel.shape}")
    tiles_h, tiles_w = (height - 2) // 2, (width - 2) // 2
    transformed = [column for row in _input_rows(x, 1) for column in _input_rows(row, 2)]
    v = tf.reshape(tf.stack(transformed, 0), [16, n * tiles_h * tiles_w, channels])
    g = tf.constant(_WINOGRAD_G)
    u = tf.reshape(tf.einsum("uk,klio,vl->uvio", g, kernel, g), [16, channels, kernel.shape[-1]])
    m = tf.reshape(tf.linalg.matmul(v, u), [4, 4, n, tiles_h, tiles_w, kernel.shape[-1]])
    rows = [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]  # A^T m, then m A, per 2x2 output tile
    quads = [part for r in rows for part in (r[0] + r[1] + r[2], r[1] - r[2] - r[3])]
    return tf.nn.depth_to_space(tf.concat(quads, -1), 2)


def winograd_rows(signatures, repeats: int) -> list:
    import tensorflow as tf

    rows = []
    for key, (count, flops) in sorted(signatures.items(), key=lambda item: -item[1][1] * item[1][0]):
        op_type, shapes, attributes = key
        if op_type != "Conv2D" or kernel_and_stride(key) != (3, 1) or (shapes[0][1] - 2) % 2 or (shapes[0][2] - 2) % 2:
            continue
        x = tf.random.stateless_normal(shapes[0], seed=(1, 2))
        kernel = tf.random.stateless_normal(shapes[1], seed=(3, 4)) * 0.05
        direct = lambda a, b: tf.nn.conv2d(a, b, 1, "VALID")  # noqa: E731
        reference = direct(x, kernel)
        error = float(tf.reduce_max(tf.abs(winograd_conv2d(x, kernel) - reference)) / tf.reduce_max(tf.abs(reference)))
        times = {}
        for name, conv in (("direct", direct), ("winograd", winograd_conv2d)):
            forward = tf.function(lambda conv=conv: tf.reshape(conv(x, kernel), [-1])[0], autograph=False)

            @tf.function(autograph=False)
            def forward_backward(conv=conv):
                with tf.GradientTape() as tape:
                    tape.watch([x, kernel])
                    y = conv(x, kernel)
                    loss = tf.reduce_sum(y * tf.reverse(y, [-1]))
                dx, dw = tape.gradient(loss, [x, kernel])
                return tf.reshape(dx, [-1])[0] + tf.reshape(dw, [-1])[0]

            times[name] = (common.timed(lambda f=forward: f().numpy(), repeats),
                           common.timed(lambda f=forward_backward: f().numpy(), repeats))
        rows.append({"input": "x".join(map(str, shapes[0])), "kernel": "x".join(map(str, shapes[1])), "count": count,
                     "direct_ms": times["direct"][0] * 1e3, "winograd_ms": times["winograd"][0] * 1e3,
                     "forward_speedup": times["direct"][0] / times["winograd"][0],
                     "direct_fb_ms": times["direct"][1] * 1e3, "winograd_fb_ms": times["winograd"][1] * 1e3,
                     "fb_speedup": times["direct"][1] / times["winograd"][1], "error": error})
        print(f"  winograd {rows[-1]['input']} * {rows[-1]['kernel']}: forward {rows[-1]['forward_speedup']:.2f}x, "
              f"forward + backward {rows[-1]['fb_speedup']:.2f}x", flush=True)
    return rows


def main(argv=None) -> int:
    common.reexec_with_tcmalloc_if_asked(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_step_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per signature (median)")
    parser.add_argument("--steps", type=int, default=3, help="timed whole steps (median)")
    parser.add_argument("--top", type=int, default=12, help="signatures listed by time lost")
    parser.add_argument("--winograd", action="store_true", help="also time a Winograd F(2x2,3x3) formulation")
    parser.add_argument("--xla", action="store_true", help="also time each signature as XLA compiles it (JAX, CPU)")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.dry_run:
        return common.dry_run(args, f"every convolution and matmul of the {args.preset} step at {args.image_size}^2, "
                                    f"batch {args.batch_size}, timed alone"
                                    + (" and under XLA" if args.xla else "") + (", and Winograd" if args.winograd else ""))
    common.apply_common_arguments(args)

    import tensorflow as tf

    import train_step

    print(common.cpu_line(), flush=True)
    model, iterator, _ = train_step.build(args.preset, args.image_size, args.batch_size,
                                               train_step.parse_variant("concat"), args.channels)
    spec = tf.TensorSpec((args.batch_size, args.image_size, args.image_size, args.channels), tf.float32)
    concrete = tf.function(model.train_step).get_concrete_function((spec, spec))
    signatures = collect_signatures(concrete)
    step_flops = common.count_graph_flops(concrete)["total"]  # train_step.py's count, of the same trace
    train_step.run_steps(model, iterator, 2)
    step_s = common.median(train_step.run_steps(model, iterator, args.steps)[0])
    matmul = common.matmul_rate()["flops_per_s"]
    print(f"{len(signatures)} distinct signatures; whole step {step_s:.3f} s; matmul {matmul / 1e9:.0f} GFLOP/s",
          flush=True)

    measured = []
    for index, (key, (count, flops)) in enumerate(signatures.items()):
        seconds = common.timed(signature_runner(key), args.repeats)
        measured.append({"key": key, "count": count, "flops": flops * count, "seconds": seconds * count,
                      "fraction": flops / seconds / matmul})
        xla = xla_runner(key) if args.xla else None
        if xla is not None:
            measured[-1]["xla_seconds"] = common.timed(xla, args.repeats) * count
        if (index + 1) % 20 == 0:
            print(f"  timed {index + 1}/{len(signatures)}", flush=True)
    matmul_end = common.matmul_rate()["flops_per_s"]
    matmul = common.median([matmul, matmul_end])

    groups = collections.defaultdict(lambda: {"flops": 0.0, "seconds": 0.0, "ops": 0, "xla_flops": 0.0, "xla_seconds": 0.0})
    for row in measured:
        kernel, stride = kernel_and_stride(row["key"])
        for name in ("matmul" if kernel == "matmul" else f"{kernel}x{kernel} / {stride}", "all"):
            group = groups[name]
            group["flops"] += row["flops"]
            group["seconds"] += row["seconds"]
            group["ops"] += row["count"]
            if "xla_seconds" in row:  # XLA rated on the signatures it ran
                group["xla_flops"] += row["flops"]
                group["xla_seconds"] += row["xla_seconds"]
    everything = groups.pop("all")
    total_flops, total_s = everything["flops"], everything["seconds"]

    def group_row(name, g):
        row = {"kernel": name, "ops": g["ops"], "gflop": g["flops"] / 1e9, "flop_share": g["flops"] / total_flops,
               "ms": g["seconds"] * 1e3, "of_matmul": g["flops"] / g["seconds"] / matmul}
        if g["xla_seconds"]:
            xla_rate = g["xla_flops"] / g["xla_seconds"]
            row.update(xla_ms=g["xla_seconds"] * 1e3, xla_of_matmul=xla_rate / matmul,
                       xla_speed=xla_rate / (g["flops"] / g["seconds"]))
        return row

    group_rows = [group_row(name, g) for name, g in sorted(groups.items(), key=lambda item: -item[1]["seconds"])]
    group_rows.append(group_row("all", everything))

    print(f"\n{args.preset}, {args.image_size}x{args.image_size}x{args.channels}, batch {args.batch_size} per domain, "
          f"float32; float32 matmul {matmul / 1e9:.0f} GFLOP/s (median of before and after)")
    print("\nThe step's convolutions and matmuls, each timed alone, by kernel side / stride")
    columns = [("kernel", "kernel / stride"), ("ops", "ops"), ("gflop", "GFLOP/step", "{:.1f}"),
               ("flop_share", "of FLOPs", "{:.0%}"), ("ms", "ms/step", "{:.0f}"), ("of_matmul", "of matmul", "{:.0%}")]
    if args.xla:
        print("(XLA: the same signatures compiled by XLA's CPU back end through JAX; 'XLA speed' is XLA's rate "
              "over TensorFlow's, above 1 when XLA is faster)")
        columns += [("xla_ms", "XLA ms/step", "{:.0f}"), ("xla_of_matmul", "XLA of matmul", "{:.0%}"),
                    ("xla_speed", "XLA speed", "{:.2f}x")]
    common.print_table(group_rows, columns)
    for row in measured:
        row["lost_ms"] = (row["seconds"] - row["flops"] / matmul) * 1e3
    losers = sorted(measured, key=lambda row: -row["lost_ms"])[: args.top]
    print(f"\nThe {len(losers)} signatures losing the most time against the matmul rate")
    common.print_table([{"op": row["key"][0], "shapes": " ".join("x".join(map(str, s)) for s in row["key"][1]),
                         "stride": kernel_and_stride(row["key"])[1], "count": row["count"],
                         "of_matmul": row["fraction"], "lost_ms": row["lost_ms"]} for row in losers],
                       [("op", "op"), ("shapes", "input shapes"), ("stride", "stride"), ("count", "x"),
                        ("of_matmul", "of matmul", "{:.0%}"), ("lost_ms", "ms lost", "{:.1f}")])
    print(f"\nArithmetic alone: {total_s:.3f} s for {total_flops / 1e9:.1f} GFLOP "
          f"({total_flops / total_s / matmul:.0%} of matmul); whole step: {step_s:.3f} s for {step_flops / 1e9:.1f} "
          f"GFLOP ({step_flops / step_s / matmul:.0%}); 80% of matmul would be {step_flops / (0.8 * matmul):.3f} s")

    winograd = []
    if args.winograd:
        print("\nWinograd F(2x2,3x3) against the direct kernel, the step's 3x3 stride-1 convolutions", flush=True)
        winograd = winograd_rows(signatures, args.repeats)
        common.print_table(winograd, [
            ("input", "input"), ("kernel", "kernel"), ("count", "x"), ("direct_ms", "direct fwd ms", "{:.1f}"),
            ("winograd_ms", "Winograd fwd ms", "{:.1f}"), ("forward_speedup", "fwd speed-up", "{:.2f}x"),
            ("direct_fb_ms", "direct fwd+bwd ms", "{:.1f}"), ("winograd_fb_ms", "Winograd fwd+bwd ms", "{:.1f}"),
            ("fb_speedup", "fwd+bwd speed-up", "{:.2f}x"), ("error", "max rel. error", "{:.1e}")])
    if args.json:
        common.write_json(args.json, {
            "benchmark": "conv_rates", "settings": vars(args), "matmul_flops_per_s": matmul, "step_seconds": step_s,
            "step_flops": step_flops, "groups": group_rows, "winograd": winograd,
            "signatures": [{**row, "key": repr(row["key"])} for row in measured]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
