"""One backend's side of the parity tests (tests/test_backend_parity.py).

The backend is fixed per process, so the test computes the TensorFlow side in its own process
(`compute`, imported) and runs this file with ``KERAS_BACKEND=jax`` for the JAX side:

    KERAS_BACKEND=jax python tests/backend_side.py INPUTS.npz RESULTS.npz

INPUTS (`initial_inputs`): a batch ``lq``, ``hq`` and, per architecture, the initial weights of G
and D (``{arch}/generator/NNNNN``, ``{arch}/discriminator/NNNNN``, in ``weights`` order). RESULTS,
per architecture and loss case (`ARCHITECTURES`, `CASES`): G's and D's outputs, every per-sample
loss term at the initial weights, the gradients one training step computes (recorded by
`helpers.gradient_recorder`, which leaves the weights alone), the step's logged losses, the batch
norm statistics after it, and, for the cases in `ADAM_CASES`, what one step with the project's
optimisers (`build_optimizers`) does: each trainable weight's change, the statistics and the
history pool after it.

No random loss terms: the structure term's noise and the pool's draws come from each backend's own
random generator, so with them on the backends agree in distribution only. The pool (4 images,
2 + 2 fakes per step) is still filling in the step compared, which needs no draw; the degradation
case blurs and reduces contrast by fixed amounts. The noise in G's input (``NOISE``) is compared by
its statistics, and its step by finite losses (``noise/*``).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

#: Generator / discriminator architectures (config overrides of the tiny configuration).
ARCHITECTURES = {
    "instance": {},
    # Batch norm (the library's fused layer on TensorFlow, Keras' own on JAX) and zero padding.
    "batch": {"generator.normalization": "batch", "generator.padding": "zero", "discriminator.normalization": "batch"},
}
#: A restoration degradation (issue #21) without random draws: every crop blurred by the same
#: Gaussian and reduced in contrast by the same factor, no noise. G's input is then the same on
#: both backends, and the structure term must still compare with the crop before it.
FIXED_DEGRADATION = dict(blur_probability=1.0, defocus_share=0.0, blur_sigma=(1.2, 1.2), contrast_probability=1.0,
                         contrast=(0.7, 0.7), noise_probability=0.0)
#: Noise in G's input (``denoising_noise`` and the degradation's Poisson-Gaussian noise): random,
#: so only its statistics are compared (`NOISE`).
NOISE = dict(denoising_noise=0.1, degradation=dict(blur_probability=0.0, contrast_probability=0.0, noise_probability=1.0,
                                                   shot_noise=(0.05, 0.05), read_noise=(0.01, 0.01)))
#: Loss cases: `SSPNet` arguments, by architecture (``degradation``: `RestorationDegradation`
#: arguments). The four variants of the paper's Table 3, the identity term, the history pool, the
#: log-loss criterion, the degradation model (with the restoration-consistency term, which compares
#: G(x~) with a fixed teacher's T(x), `_teacher`) and the shading-consistency term. The shading term's fields
#: are random draws, so its training step runs at strength 0 (fields of 1: G's three-part batch and
#: the step's plumbing compared, the term 0); its value is compared on `SHADED` inputs. The paired
#: synthetic term trains on the ``(shaded, clean)`` scenes of the inputs: rendered scenes, as the
#: input pipeline gives. With uniform noise as the clean scenes its L1's gradient is a +/- field
#: whose sums in G's backward pass cancel, and TensorFlow's and XLA's rounding then differed by
#: 0.45% of G's largest gradient (rendered scenes: 0.02%, as the other cases).
CASES = {
    "instance": {
        "gan": dict(variant="gan"),
        "gan+iu": dict(variant="gan+iu"),
        "gan+te": dict(variant="gan+te"),
        "gan+sp+identity+pool": dict(variant="gan+sp", identity_weight=1.0, history_pool_size=4),
        "bce": dict(variant="gan+sp", adversarial="bce"),
        "gan+sp+degradation": dict(variant="gan+sp", degradation=FIXED_DEGRADATION, restoration_consistency=2.0),
        "gan+sp+shading": dict(variant="gan+sp", shading_consistency=2.0, shading_consistency_strength=0.0),
        "gan+sp+synthetic": dict(variant="gan+sp", degradation=FIXED_DEGRADATION, synthetic_restoration=3.0,
                                 texture_keeping=2.0),
    },
    "batch": {"gan+sp": dict(variant="gan+sp")},
}
ADAM_CASES = {("instance", "gan+sp+identity+pool"), ("batch", "gan+sp")}
BATCH_SHAPE = (2, 64, 64, 1)
#: A fixed illumination ramp (1 at the left edge, 0.5 at the right) for the shading-consistency term's value.
SHADED = np.linspace(1.0, 0.5, BATCH_SHAPE[2], dtype=np.float32)[None, None, :, None]


def _config(arch):
    from tiny import tiny_config

    return tiny_config(**{**ARCHITECTURES[arch], "loss.structure_noise": 0.0})


def _numpy(value):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))


def _networks(arch, inputs=None):
    """G and D of ``arch``, with the weights of ``inputs`` (if given)."""
    import keras

    from ssp_keras.networks import build_discriminator, build_generator

    config = _config(arch)
    keras.utils.set_random_seed(0)
    networks = {"generator": build_generator(config), "discriminator": build_discriminator(config)}
    if inputs is not None:
        _load(networks, inputs, arch)
    return networks


def _load(networks, inputs, arch):
    for name, network in networks.items():
        for index, variable in enumerate(network.weights):
            variable.assign(inputs[f"{arch}/{name}/{index:05d}"])


def initial_inputs() -> dict:
    """The batch and every architecture's initial weights (run on one backend, read by both).

    G gets random weights throughout: untrained, its output skip makes it the identity (its last
    convolution is zero), which would stop every gradient but the last layers'.
    """
    from ssp_keras.data.synthetic import render_training_crop
    from tiny import randomised

    rng = np.random.default_rng(0)
    inputs = {"lq": rng.random(BATCH_SHAPE, np.float32), "hq": rng.random(BATCH_SHAPE, np.float32)}
    clean = np.stack([render_training_crop(np.random.default_rng([2, index]), BATCH_SHAPE[1]) for index in range(BATCH_SHAPE[0])])
    inputs.update(synthetic_clean=clean, synthetic_shaded=clean * SHADED)
    for arch in ARCHITECTURES:
        networks = _networks(arch)
        randomised(networks["generator"], seed=1, scale=0.2)
        for name, network in networks.items():
            for index, variable in enumerate(network.weights):
                inputs[f"{arch}/{name}/{index:05d}"] = _numpy(variable)
                inputs[f"{arch}/{name}/{index:05d}/path"] = np.asarray(variable.path)
    return inputs


def _sspnet(networks, inputs, arch, arguments):
    """An `SSPNet` of ``networks`` (reset to the weights of ``inputs``) with the loss ``arguments``."""
    from ssp_keras.training.degradation import RestorationDegradation
    from ssp_keras.training.model import SSPNet

    _load(networks, inputs, arch)  # every case starts from the same weights
    arguments = dict(arguments)
    if "degradation" in arguments:
        arguments["degradation"] = RestorationDegradation(**arguments["degradation"], seed=0)
    if arguments.get("restoration_consistency"):
        arguments["teacher"] = _teacher()
    return SSPNet(networks["generator"], networks["discriminator"], iu_patch_sizes=_config(arch).loss.iu_patch_sizes,
                  structure_noise=0.0, seed=0, **arguments)


def _teacher():
    """The restoration-consistency teacher: a 3x3 convolution with fixed weights (the same on both
    backends), so that the JAX step's stateless teacher call has weights to read."""
    import keras

    inputs = keras.Input((None, None, 1))
    convolution = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")
    teacher = keras.Model(inputs, convolution(inputs))
    kernel, bias = np.random.default_rng(7).normal(0.0, 0.5, (3, 3, 1, 1)).astype("float32"), np.zeros(1, "float32")
    convolution.set_weights([kernel, bias])
    return teacher


def compute(inputs) -> dict:
    """This process's backend's results (see the module docstring) for ``inputs``."""
    import keras

    from helpers import gradient_recorder
    from ssp_keras.training.model import build_optimizers

    lq, hq = inputs["lq"], inputs["hq"]
    results = {"backend": np.asarray(keras.backend.backend())}
    for arch, cases in CASES.items():
        networks = _networks(arch, inputs)
        generator, discriminator = networks["generator"], networks["discriminator"]
        for name, network in networks.items():
            for index, variable in enumerate(network.weights):
                assert variable.path == str(inputs[f"{arch}/{name}/{index:05d}/path"]), variable.path
        both = np.concatenate([lq, hq])
        results[f"{arch}/outputs/generator_inference"] = _numpy(generator(both, training=False))
        results[f"{arch}/outputs/generator_training"] = _numpy(generator(both, training=True))
        results[f"{arch}/outputs/discriminator"] = _numpy(discriminator(both, training=False))
        for case, arguments in cases.items():
            prefix = f"{arch}/{case}"
            model = _sspnet(networks, inputs, arch, arguments)
            enhanced = _numpy(generator(both, training=False))
            real, fake_lq, fake_hq = np.split(_numpy(discriminator(np.concatenate([hq, enhanced]), training=False)), 3)
            extra = {}
            if model.shading_consistency:
                extra["enhanced_reshaded"] = _numpy(generator(lq * SHADED, training=False))
            if model.teacher is not None:
                extra["restoration_target"] = _numpy(model.restoration_target(lq))
            synthetic = (inputs["synthetic_shaded"], inputs["synthetic_clean"]) if model.synthetic_restoration else None
            if synthetic is not None:
                extra.update(enhanced_synthetic=_numpy(generator(synthetic[0], training=False)),
                             synthetic_clean=synthetic[1])
            if model.texture_keeping:
                extra["enhanced_plain"] = np.split(enhanced, 2)[0]  # G(x) on the undegraded crop
            terms = model.generator_loss_terms(lq, hq, *np.split(enhanced, 2), fake_lq, fake_hq, **extra)
            terms["d_loss"] = model.discriminator_loss(real, fake_lq, fake_hq)
            for term, value in terms.items():
                results[f"{prefix}/terms/{term}"] = _numpy(value)

            model.compile(gradient_recorder("g"), gradient_recorder("d"))
            logs = model.train_on_batch(lq, hq, sample_weight=synthetic, return_dict=True)  # the third element
            for term, value in logs.items():
                results[f"{prefix}/logs/{term}"] = np.asarray(value)
            for net, optimizer in (("generator", model.generator_optimizer), ("discriminator", model.discriminator_optimizer)):
                for index, gradient in enumerate(optimizer.gradients):  # network.trainable_weights order
                    results[f"{prefix}/gradient/{net}/{index:05d}"] = _numpy(gradient)
            for net, network in networks.items():
                for index, variable in enumerate(network.non_trainable_weights):  # batch-norm statistics
                    results[f"{prefix}/statistics/{net}/{index:05d}"] = _numpy(variable)

            if (arch, case) in ADAM_CASES:
                model = _sspnet(networks, inputs, arch, arguments)
                before = {net: [_numpy(v) for v in network.trainable_weights] for net, network in networks.items()}
                model.compile(*build_optimizers(_config(arch), steps_per_epoch=10))
                model.train_on_batch(lq, hq)
                for net, network in networks.items():
                    for index, variable in enumerate(network.trainable_weights):  # aligned with the gradients
                        results[f"{prefix}/adam_step/{net}/{index:05d}"] = _numpy(variable) - before[net][index]
                    for index, variable in enumerate(network.non_trainable_weights):
                        results[f"{prefix}/adam_statistics/{net}/{index:05d}"] = _numpy(variable)
                for index, variable in enumerate(model.fake_pool.weights if model.fake_pool is not None else ()):
                    results[f"{prefix}/adam_pool/{index:05d}"] = _numpy(variable)

    # Noise in G's input: its statistics (over 256 images, each with its own noise level), and one step with it.
    networks = _networks("instance", inputs)
    model = _sspnet(networks, inputs, "instance", NOISE)
    many = np.random.default_rng(1).random((256, 16, 16, 1), np.float32)
    noisy = _numpy(model._generator_input(many))
    results["instance/noise/mean_change"] = np.asarray(np.abs(noisy - many).mean())
    results["instance/noise/range"] = np.asarray([noisy.min(), noisy.max()])
    model.compile(gradient_recorder("g"), gradient_recorder("d"))
    logs = model.train_on_batch(lq, hq, return_dict=True)
    results["instance/noise/step_losses"] = np.asarray([logs[name] for name in sorted(logs)], np.float32)
    return results


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND") == "jax":
        from helpers import block_imports

        block_imports("tensorflow")  # the JAX side runs as on a machine without TensorFlow
    with np.load(sys.argv[1]) as saved:
        given = {name: saved[name] for name in saved.files}
    np.savez(sys.argv[2], **compute(given))
