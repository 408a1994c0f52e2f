"""The generator's two memory-bound kernels, against what they replace, in float32 and bfloat16.

Run by hand (not part of the test suite):

    python benchmarks/kernels.py [--tcmalloc] [--repeats 9] [--max-load 1.5] [--json PATH]

Four tables, each case timed in interleaved rounds (median of ``--repeats``), on the CPU flags
printed at the top:

* **mirror padding** (one per convolution in G): TensorFlow's ``MirrorPad`` (``tf.pad(...,
  "SYMMETRIC")``) against the library's `networks.tf_kernels.symmetric_pad` (slices, reversals and
  concatenations forward; ``MirrorPadGrad`` backward), forward alone and forward + backward.
* **instance norm in bfloat16**: ``FusedBatchNormV3`` fed bfloat16 directly against the same
  kernel in float32 between two casts, for several channel counts. oneDNN's bfloat16 kernel is
  fast only when the (fused) channel count is a multiple of 16; the library casts otherwise
  (`networks.tf_kernels.fusable`).
* **float32 instance norm in training**, forward + backward, on the `paper` step's shapes (batch 8
  = 4 LQ + 4 HQ through G): the batch seen as one ``[1, H, W, N*C]`` image between two transposes
  (the earlier formulation, `networks.tf_kernels.instance_norm_as_one_image`) against the library's
  per-image split (`networks.tf_kernels.instance_norm`).
* **the padding's share of a 3x3 convolution in training** (float32, forward + backward, the
  `paper` 384² step's G shapes): the library's mirror padding + "valid" convolution against a
  zero-padded "same" convolution, which needs no pad op and no ``MirrorPadGrad``. The ratio is the
  most that folding the mirror padding into the convolution (a "same" convolution plus a border
  correction) could gain per layer, before the correction's own cost.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

common.reexec_with_tcmalloc_if_asked()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PAD_SHAPES = ((1, 1024, 1024, 8), (1, 512, 512, 16), (1, 256, 256, 64), (1, 96, 96, 256), (8, 128, 128, 64),
              (8, 64, 64, 256))
NORM_CASES = ((8, 1024), (16, 512), (24, 512), (32, 256), (48, 256), (64, 256), (128, 128), (256, 64))


def interleaved(cases: dict, repeats: int, rounds: int = 2) -> dict:
    """``{name: median ms}`` over ``rounds`` interleaved rounds of ``repeats`` calls each."""
    times = {name: [] for name in cases}
    for round_index in range(rounds):
        order = list(cases.items()) if round_index % 2 == 0 else list(cases.items())[::-1]
        for name, function in order:
            times[name].append(common.timed(function, repeats) * 1e3)
    return {name: common.median(values) for name, values in times.items()}


def pad_rows(repeats: int) -> list:
    import tensorflow as tf

    from ssp_keras.networks.tf_kernels import symmetric_pad as _symmetric_pad

    def tensorflow_pad(x, pad):
        return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")

    rows = []
    for dtype in (tf.float32, tf.bfloat16):
        for shape in PAD_SHAPES:
            variable = tf.Variable(tf.random.normal(shape, seed=0))
            value = tf.cast(variable, dtype)

            def forward(pad):
                function = tf.function(lambda x: pad(x, 1))
                return lambda: function(value).numpy()

            def both(pad):
                @tf.function
                def step():
                    with tf.GradientTape() as tape:
                        padded = pad(tf.cast(variable, dtype), 1)
                        loss = tf.reduce_sum(tf.square(tf.cast(padded, tf.float32)))  # needs the forward value
                    return tape.gradient(loss, variable)
                return lambda: step().numpy()

            times = interleaved({"tf fwd": forward(tensorflow_pad), "ours fwd": forward(_symmetric_pad),
                                 "tf fwd+bwd": both(tensorflow_pad), "ours fwd+bwd": both(_symmetric_pad)}, repeats)
            rows.append({"dtype": dtype.name, "shape": "x".join(map(str, shape)),
                         "tf_forward_ms": times["tf fwd"], "forward_ms": times["ours fwd"],
                         "forward_speedup": times["tf fwd"] / times["ours fwd"],
                         "tf_both_ms": times["tf fwd+bwd"], "both_ms": times["ours fwd+bwd"],
                         "both_speedup": times["tf fwd+bwd"] / times["ours fwd+bwd"]})
    return rows


def norm_rows(repeats: int) -> list:
    import tensorflow as tf

    rows = []
    for channels, side in NORM_CASES:
        scale, offset = tf.ones([channels]), tf.zeros([channels])

        def norm(x):
            return tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=1e-5, is_training=True)[0]

        value = tf.cast(tf.random.normal([1, side, side, channels], seed=0), tf.bfloat16)
        direct = tf.function(norm)
        cast = tf.function(lambda x: tf.cast(norm(tf.cast(x, tf.float32)), tf.bfloat16))
        times = interleaved({"direct": lambda: direct(value).numpy(), "cast": lambda: cast(value).numpy()}, repeats)
        rows.append({"channels": channels, "shape": f"1x{side}x{side}x{channels}",
                     "bfloat16_ms": times["direct"], "cast_float32_ms": times["cast"],
                     "bfloat16_speedup": times["cast"] / times["direct"], "multiple_of_16": channels % 16 == 0})
    return rows


TRAINING_NORM_SHAPES = ((8, 256, 256, 16), (8, 128, 128, 64), (8, 64, 64, 256), (8, 32, 32, 512), (8, 16, 16, 1024),
                        (8, 8, 8, 2048))


def _forward_backward(function, *values):
    """A timed callable: ``function(*variables)``, then the gradients of a weighted sum of it."""
    import tensorflow as tf

    variables = [tf.Variable(value) for value in values]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(function(*variables) * 1e-3)
        return [tf.reduce_sum(g) for g in tape.gradient(loss, variables)]

    return lambda: [g.numpy() for g in step()]


def training_norm_rows(repeats: int) -> list:
    import tensorflow as tf

    from ssp_keras.networks.tf_kernels import instance_norm as _instance_norm
    from ssp_keras.networks.tf_kernels import instance_norm_as_one_image as _instance_norm_as_one_image

    rows = []
    for shape in TRAINING_NORM_SHAPES:
        x, gamma, beta = tf.random.normal(shape, seed=0), tf.ones([shape[-1]]), tf.zeros([shape[-1]])
        times = interleaved({"before": _forward_backward(lambda x, g, b: _instance_norm_as_one_image(x, g, b, 1e-5),
                                                         x, gamma, beta),
                             "split": _forward_backward(lambda x, g, b: _instance_norm(x, g, b, 1e-5), x, gamma, beta)},
                            repeats)
        rows.append({"shape": "x".join(map(str, shape)), "transposed_ms": times["before"], "split_ms": times["split"],
                     "speedup": times["before"] / times["split"]})
    return rows


CONV_PAD_SHAPES = ((8, 384, 384, 16, 16), (8, 192, 192, 32, 32), (8, 96, 96, 64, 64), (8, 48, 48, 128, 128),
                   (8, 24, 24, 256, 256))


def conv_padding_rows(repeats: int) -> list:
    import tensorflow as tf

    from ssp_keras.networks.tf_kernels import symmetric_pad as _symmetric_pad

    rows = []
    for batch, height, width, channels, filters in CONV_PAD_SHAPES:
        x = tf.random.normal((batch, height, width, channels), seed=0)
        kernel = tf.random.normal((3, 3, channels, filters), seed=1) * 0.1
        times = interleaved({
            "mirror": _forward_backward(lambda x, w: tf.nn.conv2d(_symmetric_pad(x, 1), w, 1, "VALID"), x, kernel),
            "same": _forward_backward(lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), x, kernel)}, repeats)
        rows.append({"shape": f"{batch}x{height}x{width}x{channels} * 3x3x{channels}x{filters}",
                     "mirror_ms": times["mirror"], "same_ms": times["same"], "ceiling": times["mirror"] / times["same"]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per case and round")
    common.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.dry_run:
        return common.dry_run(args, f"mirror padding and instance norm kernels against what they replace, "
                                    f"{args.repeats} calls per case and round")
    common.apply_common_arguments(args)
    print(common.cpu_line())
    pads = pad_rows(args.repeats)
    print("\nMirror padding by 1 px (ms, median; speed-up = TensorFlow's MirrorPad time / ours)")
    common.print_table(pads, [("dtype", "dtype"), ("shape", "shape"), ("tf_forward_ms", "MirrorPad fwd", "{:.2f}"),
                              ("forward_ms", "ours fwd", "{:.2f}"), ("forward_speedup", "speed-up", "{:.2f}x"),
                              ("tf_both_ms", "MirrorPad fwd+bwd", "{:.2f}"), ("both_ms", "ours fwd+bwd", "{:.2f}"),
                              ("both_speedup", "speed-up", "{:.2f}x")])
    norms = norm_rows(args.repeats)
    print("\nFusedBatchNormV3 on bfloat16 input (ms, median): bfloat16 kernel vs float32 between casts")
    common.print_table(norms, [("shape", "shape"), ("bfloat16_ms", "bfloat16", "{:.2f}"),
                               ("cast_float32_ms", "cast + float32 + cast", "{:.2f}"),
                               ("bfloat16_speedup", "bfloat16 speed-up", "{:.2f}x"),
                               ("multiple_of_16", "C % 16 == 0")])
    training = training_norm_rows(args.repeats)
    print("\nfloat32 instance norm in training, forward + backward (ms, median): transposed view vs per-image split")
    common.print_table(training, [("shape", "shape"), ("transposed_ms", "[1, H, W, N*C] view", "{:.2f}"),
                                  ("split_ms", "per-image split", "{:.2f}"), ("speedup", "speed-up", "{:.2f}x")])
    padding = conv_padding_rows(args.repeats)
    print("\n3x3 convolution in training, float32, forward + backward (ms, median): mirror padding + 'valid' vs "
          "zero 'same' (the ceiling of folding the padding into the convolution)")
    common.print_table(padding, [("shape", "input * kernel"), ("mirror_ms", "mirror pad + valid", "{:.2f}"),
                                 ("same_ms", "zero 'same'", "{:.2f}"), ("ceiling", "ceiling", "{:.2f}x")])
    if args.json:
        common.write_json(args.json, {"benchmark": "kernels", "environment": common.environment(),
                                      "mirror_padding": pads, "instance_norm_bfloat16": norms,
                                      "instance_norm_float32_training": training, "convolution_padding": padding})
    return 0


if __name__ == "__main__":
    sys.exit(main())
