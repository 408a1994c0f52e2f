"""bfloat16 where it is fast: CPU detection, the bfloat16 inference copy, the kernels' half-precision paths."""

import numpy as np
import pytest
import tensorflow as tf

from ssp_keras import runtime
from ssp_keras.inference import enhance_array
from ssp_keras.inference.loading import resolve_inference_precision, with_precision
from ssp_keras.networks.layers import InstanceNormalization, MirrorPadding2D
from tiny import tiny_generator


def test_cpu_flags_are_read_from_cpuinfo_and_decide_native_bfloat16(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    flags = runtime.cpu_flags(str(cpuinfo))
    assert {"avx2", "avx512_bf16"} <= flags and "amx_bf16" not in flags  # the first CPU's line
    assert runtime.native_bfloat16(flags)
    assert runtime.native_bfloat16(frozenset({"amx_bf16"}))
    assert not runtime.native_bfloat16(frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert runtime.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_auto_precision_is_float32_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(runtime, "native_bfloat16", lambda flags=None: False)
    assert resolve_inference_precision("auto") == "float32"
    monkeypatch.setattr(runtime, "native_bfloat16", lambda flags=None: True)
    assert resolve_inference_precision("auto") == "bfloat16"  # no GPU on the test machines
    assert resolve_inference_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_inference_precision("float16")


def test_bfloat16_copy_computes_in_bfloat16_and_stays_close_to_float32():
    generator = tiny_generator()
    before = [w.numpy().copy() for w in generator.weights]
    copy = with_precision(generator, "bfloat16")
    assert copy is not generator and copy.dtype_policy.name == "bfloat16"
    kernels = [w for w in copy.weights if "kernel" in w.path]
    assert kernels and all(w.dtype == "bfloat16" for w in kernels[:-1])  # stored in bfloat16: no cast per call
    image = np.random.default_rng(0).random((96, 80, 1)).astype(np.float32)
    reference, result = enhance_array(generator, image), enhance_array(copy, image)
    assert result.dtype == np.float32 and result.shape == image.shape
    difference = np.abs(result - reference) * 255
    assert 0 < difference.mean() < 1.0 and difference.max() < 8  # bfloat16 did run, and is close
    for original, now in zip(before, generator.weights):  # the float32 model is untouched
        np.testing.assert_array_equal(original, now.numpy())
    assert with_precision(generator, "float32") is generator
    back = with_precision(copy, "float32")
    assert back.dtype_policy.name == "float32" and all(w.dtype == "float32" for w in back.weights)
    np.testing.assert_allclose(back.weights[0].numpy(), before[0], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("normalization", ["instance", "batch"])
def test_dtype_reaches_every_layer_of_both_networks_without_a_global_policy(normalization):
    """Every layer but the float32 outputs (and the input specs) takes the networks' ``dtype``;
    Keras' global policy is not touched, and the saved config brings the policy back."""
    import keras

    from ssp_keras.config import preset
    from ssp_keras.networks import PatchDiscriminator, SSPGenerator, build_discriminator, build_generator
    from tiny import TINY_GENERATOR, tiny_config

    float32_layers = {"images", "encoder_input", "to_image", "output_skip", "to_image_sigmoid", "logits"}
    config = tiny_config(**{"generator.normalization": normalization, "discriminator.normalization": normalization})
    for policy in ("bfloat16", "mixed_bfloat16"):
        networks = (build_generator(config, dtype=policy), build_discriminator(config, dtype=policy))
        assert keras.config.dtype_policy().name == "float32"
        for network in networks:
            layers = network._flatten_layers(include_self=False)
            assert network.dtype_policy.name == policy
            assert {layer.name for layer in layers if layer.dtype_policy.name != policy} <= float32_layers
            rebuilt = type(network).from_config(network.get_config())
            assert rebuilt.dtype_policy.name == policy
            assert [layer.dtype_policy.name for layer in rebuilt._flatten_layers(include_self=False)] == [
                layer.dtype_policy.name for layer in layers]
    assert preset("lite").train.precision == "auto"  # what the trainer resolves and passes as dtype
    assert SSPGenerator(channels=1, **TINY_GENERATOR).dtype_policy.name == "float32"
    assert PatchDiscriminator(channels=1, base_width=4).dtype_policy.name == "float32"


def test_training_builds_its_precision_into_the_model_and_leaves_the_global_policy_alone(tmp_path):
    import keras

    from ssp_keras.training import trainer
    from tiny import tiny_config

    config = tiny_config(**{"train.precision": "mixed_bfloat16"})
    model, epoch = trainer._build_model(config, steps_per_epoch=1, replicas=1, checkpoint_dir=str(tmp_path))
    assert epoch == 0 and keras.config.dtype_policy().name == "float32"
    for network in (model, model.generator, model.discriminator):
        assert network.dtype_policy.name == "mixed_bfloat16"
    assert not isinstance(model.generator_optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16 needs none
    float16 = trainer._build_model(tiny_config(**{"train.precision": "mixed_float16"}), 1, 1, str(tmp_path))[0]
    assert isinstance(float16.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(float16.discriminator_optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("channels, fused_in_bfloat16", [(16, True), (8, False), (24, False)])
def test_instance_norm_takes_bfloat16_into_the_fused_kernel_only_for_fast_channel_counts(channels, fused_in_bfloat16):
    x = tf.random.normal([1, 12, 10, channels], seed=1) * 3.0 + 1.0
    reference = InstanceNormalization()
    reference.build(x.shape)
    layer = InstanceNormalization(dtype="bfloat16")
    layer.build(x.shape)
    function = tf.function(lambda value: layer(value))
    graph = function.get_concrete_function(tf.TensorSpec(x.shape, tf.bfloat16)).graph
    kinds = {node.attr["T"].type for node in graph.as_graph_def().node if node.op == "FusedBatchNormV3"}
    assert kinds == {tf.bfloat16.as_datatype_enum if fused_in_bfloat16 else tf.float32.as_datatype_enum}
    result = function(tf.cast(x, tf.bfloat16))
    assert result.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(result, tf.float32).numpy(), reference(x).numpy(), atol=0.05)


@pytest.mark.parametrize("shape, pad", [((2, 5, 7, 3), 1), ((1, 9, 9, 2), 3), ((1, 1, 1, 4), 1), ((3, 4, 6, 1), 2)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_mirror_padding_equals_tensorflow_symmetric_pad_in_values_and_gradient(shape, pad, dtype):
    x = tf.Variable(tf.random.normal(shape, seed=2))
    weights = tf.random.normal([shape[0], shape[1] + 2 * pad, shape[2] + 2 * pad, shape[3]], seed=3)
    paddings = [[0, 0], [pad, pad], [pad, pad], [0, 0]]
    with tf.GradientTape(persistent=True) as tape:
        ours = MirrorPadding2D(pad, dtype=dtype)(tf.cast(x, dtype))
        theirs = tf.pad(tf.cast(x, dtype), paddings, mode="SYMMETRIC")
        loss_ours = tf.reduce_sum(tf.cast(ours, tf.float32) * weights)
        loss_theirs = tf.reduce_sum(tf.cast(theirs, tf.float32) * weights)
    np.testing.assert_array_equal(tf.cast(ours, tf.float32).numpy(), tf.cast(theirs, tf.float32).numpy())
    np.testing.assert_array_equal(tape.gradient(loss_ours, x).numpy(), tape.gradient(loss_theirs, x).numpy())


def test_mirror_padding_larger_than_the_image_is_refused_like_tensorflow():
    with pytest.raises(ValueError, match="needs height and width >= 3"):
        MirrorPadding2D(3)(tf.zeros([1, 2, 5, 1]))
