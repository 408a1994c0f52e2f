"""`SSPNet`: the GAN as a `keras.Model` whose training step reads like SPEC section 3.

Notation: x = LQ batch, y = HQ batch, G(x), G(y) their enhancements, adv(d, t) the adversarial
criterion. One training step:

1. G enhances x and y in one pass over the concatenated batch (shared weights: the Siamese part).
2. D update:  L_D = l1 * 1/2 [adv(D(y), real) + adv(D(G(x)), fake)]
                  + l2 * 1/2 [adv(D(y), real) + adv(D(G(y)), fake)]
3. G update:  L_G = l1 * adv(D(G(x)), real) + l2 * adv(D(G(y)), real) + alpha * L_SP
              L_SP = L_IU(G(x)) + beta * [structure(x, G(x)) + structure(y, G(y))]
   (with the freshly updated D), plus an optional identity term |y - G(y)| and an optional
   shading-consistency term (`ssp_keras.losses.consistency`: G((s x)~) with G(x~)'s pattern and
   x's level; s a random smooth field of maximum 1, (s x)~ s x degraded with draws of its own)
   and an optional restoration-consistency term (G(x~) with T(x), a frozen teacher's output on
   the crop before degradation, relative to T(x)'s local level), and an optional paired term on
   synthetic scenes: G(s~) with s, pattern for pattern (`ssp_keras.losses.restoration`), s a clean
   synthetic scene from the input pipeline, s~ it shaded there and degraded here like x, and an
   optional texture-keeping term (G(x), G's output on the crop without the degradation, keeping
   x's fine band; `ssp_keras.losses.texture`).

With a restoration degradation model (``degradation``, off in the paper; issue #21), G's LQ input
in training is x~, x blurred, reduced in contrast and noised at random
(`ssp_keras.training.degradation`), while structure(x, G(x~)) still compares with x: G is taught
to restore rather than to preserve the degradation. ``denoising_noise`` > 0 (the older, noise-only
form) adds signal-dependent noise the same way. `_generator_input` is the one place where G's
training input is formed; everything else reads G(x~) for G(x).

The loss variant of the paper's Table 3 ("gan", "gan+iu", "gan+te", "gan+sp") switches the L_SP
terms on and off; all terms are always measured and reported.

`SSPNet` holds these equations (`discriminator_loss`, `generator_loss_terms`, from D's logits) and
nothing else. The step that differentiates them is written once per backend, beside each other,
as keras.io's "Customizing what happens in fit()" guides write them:
`ssp_keras.training.tensorflow_step` (``tf.GradientTape``) and `ssp_keras.training.jax_step`
(a stateless ``train_step(state, data)`` with ``stateless_call``, ``jax.value_and_grad`` and both
optimisers' ``stateless_apply``); `SSPNet` is built on the one of the backend Keras runs on, and
both give the same step to float32 rounding (tests/test_backend_parity.py). Losses are per-sample
vectors reduced over the global batch, so a step on several replicas equals one on one replica.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
from keras import ops

from ssp_keras.defaults import LOSS_VARIANT_TERMS, LossConfig, check_arguments, rules_of
from ssp_keras.losses import (
    adversarial_loss, illumination_uniformity_loss, restoration_consistency_loss, shading_consistency_loss, structure_loss,
    synthetic_restoration_loss, texture_keeping_loss,
)
from ssp_keras.training.degradation import RestorationDegradation, add_poisson_gaussian_noise
from ssp_keras.training.history_pool import FakeImagePool
from ssp_keras.training.optimizers import FusedAdam, OptimizerPair
from ssp_keras.utils.shading import SHADING_DRAWS, shading_field

LOSS_NAMES = ("d_loss", "g_loss", "adv_loss", "iu_loss", "te_loss", "sp_loss", "identity_loss", "shading_loss",
              "restoration_loss", "synthetic_loss", "texture_loss")


def _backend_step_classes() -> tuple:
    """The classes holding `SSPNet`'s ``train_step`` and ``test_step`` for the backend Keras runs on
    (imported here, so that only that backend's framework is loaded)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from ssp_keras.training.distribute import MultiWorkerWorkarounds
        from ssp_keras.training.tensorflow_step import TensorFlowTrainStep

        return (MultiWorkerWorkarounds, TensorFlowTrainStep)  # the workarounds wrap the step
    if backend == "jax":
        from ssp_keras.training.jax_step import JaxTrainStep

        return (JaxTrainStep,)
    return (_UnsupportedBackendTrainStep,)


class _UnsupportedBackendTrainStep:
    def train_step(self, *args):
        raise NotImplementedError(f"SSPNet trains on the TensorFlow and JAX backends, not on {keras.backend.backend()!r}")

    test_step = train_step


@keras.saving.register_keras_serializable(package="ssp_keras")
class SSPNet(*_backend_step_classes(), keras.Model):
    """SSP-Net: owns the generator and the discriminator; `call` enhances.

    Args:
        generator: image-to-image model, ``[N, H, W, C]`` in [0, 1] -> same.
        discriminator: PatchGAN model, ``[N, H, W, C]`` -> logits ``[N, h, w, 1]``.
        variant ... restoration_consistency: the loss settings, the fields of `ssp_keras.defaults.LossConfig`
            (``config.loss``), which gives their meaning, defaults and rules.
        teacher: the frozen generator T whose output on x is the restoration-consistency term's
            target (``LossConfig.restoration_teacher``, loaded by `build_sspnet`); required when
            ``restoration_consistency`` > 0, None otherwise. Its weights are never trained.
        degradation: a `RestorationDegradation` applied to G's LQ input in training (``None``:
            none, the paper); the structure term compares with the crop before it.
        seed: seed of the random streams of the structure noise, G's input noise and the fake pool.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        variant: str = LossConfig.variant,
        adversarial: str = LossConfig.adversarial,
        lambda1: float = LossConfig.lambda1,
        lambda2: float = LossConfig.lambda2,
        alpha: float = LossConfig.alpha,
        beta: float = LossConfig.beta,
        iu_patch_sizes: Sequence[int] = LossConfig.iu_patch_sizes,
        ssim_window: int = LossConfig.ssim_window,
        ssim_sigma: float = LossConfig.ssim_sigma,
        structure_noise: float = LossConfig.structure_noise,
        identity_weight: float = LossConfig.identity_weight,
        history_pool_size: int = LossConfig.history_pool_size,
        denoising_noise: float = LossConfig.denoising_noise,
        shading_consistency: float = LossConfig.shading_consistency,
        shading_consistency_strength: float = LossConfig.shading_consistency_strength,
        restoration_consistency: float = LossConfig.restoration_consistency,
        synthetic_restoration: float = LossConfig.synthetic_restoration,
        texture_keeping: float = LossConfig.texture_keeping,
        teacher: keras.Model | None = None,
        degradation: RestorationDegradation | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        iu_patch_sizes = tuple(int(p) for p in iu_patch_sizes)
        check_arguments(type(self).__name__, rules_of(LossConfig), locals())  # the arguments, by name
        self.generator = generator
        self.discriminator = discriminator
        self.variant = variant
        self.adversarial = adversarial
        self.lambda1 = float(lambda1)
        self.lambda2 = float(lambda2)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.iu_patch_sizes = iu_patch_sizes
        self.ssim_window = int(ssim_window)
        self.ssim_sigma = float(ssim_sigma)
        self.structure_noise = float(structure_noise)
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.identity_weight = float(identity_weight)
        self.history_pool_size = int(history_pool_size)
        self.denoising_noise = float(denoising_noise)
        self.shading_consistency = float(shading_consistency)
        self.shading_consistency_strength = float(shading_consistency_strength)
        self.restoration_consistency = float(restoration_consistency)
        self.synthetic_restoration = float(synthetic_restoration)
        self.texture_keeping = float(texture_keeping)
        if (teacher is not None) != (self.restoration_consistency > 0):
            raise ValueError("SSPNet argument 'teacher': must be given exactly when restoration_consistency > 0 "
                             f"(got restoration_consistency {self.restoration_consistency} and teacher {teacher!r})")
        if teacher is not None:
            if not isinstance(teacher, keras.Model):
                raise ValueError(f"SSPNet argument 'teacher': must be a keras.Model (a generator) or None, got {teacher!r}")
            teacher.trainable = False  # its variables are non-trainable state: no optimiser sees them
        self.teacher = teacher
        if degradation is not None and not isinstance(degradation, RestorationDegradation):
            raise ValueError(f"SSPNet argument 'degradation': must be a RestorationDegradation or None, got {degradation!r}")
        self.degradation = degradation
        self.seed = seed
        # float32 whatever the dtype policy: the pool stores and returns images, not activations.
        self.fake_pool = (
            FakeImagePool(self.history_pool_size, seed=seed, dtype="float32") if self.history_pool_size else None
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}

    # ------------------------------------------------------------------ Keras plumbing
    def build(self, input_shape):
        """G and D are built at construction; the fake pool (if any) needs the image shape, so
        that a `.keras` file of an SSPNet holds, and restores, the pool too."""
        if self.fake_pool is not None and not self.fake_pool.built and None not in tuple(input_shape)[1:]:
            self.fake_pool.build(input_shape)

    def call(self, images, training=False):
        return self.generator(images, training=training)

    def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
        """Takes both optimisers and builds them, in the active distribution scope.

        TF 2.21 / Keras 3.15: an optimiser that `compile` does not own must create its slots inside
        `strategy.scope()`, or the first `fit` fails with a placeholder error; building here (the
        caller compiles inside the scope) guarantees it. ``model.optimizer`` becomes an
        `OptimizerPair`, which gives Keras' trainers the variables of both (the JAX trainer carries
        them in the step's state).
        """
        kwargs.setdefault("optimizer", None)
        super().compile(**kwargs)
        self.generator_optimizer = _with_loss_scaling(generator_optimizer, self.generator)
        self.discriminator_optimizer = _with_loss_scaling(discriminator_optimizer, self.discriminator)
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.optimizer = OptimizerPair(self.generator_optimizer, self.discriminator_optimizer)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "variant": self.variant,
                "adversarial": self.adversarial,
                "lambda1": self.lambda1,
                "lambda2": self.lambda2,
                "alpha": self.alpha,
                "beta": self.beta,
                "iu_patch_sizes": list(self.iu_patch_sizes),
                "ssim_window": self.ssim_window,
                "ssim_sigma": self.ssim_sigma,
                "structure_noise": self.structure_noise,
                "identity_weight": self.identity_weight,
                "history_pool_size": self.history_pool_size,
                "denoising_noise": self.denoising_noise,
                "shading_consistency": self.shading_consistency,
                "shading_consistency_strength": self.shading_consistency_strength,
                "restoration_consistency": self.restoration_consistency,
                "synthetic_restoration": self.synthetic_restoration,
                "texture_keeping": self.texture_keeping,
                "teacher": None if self.teacher is None else keras.saving.serialize_keras_object(self.teacher),
                "degradation": (
                    None if self.degradation is None else keras.saving.serialize_keras_object(self.degradation)
                ),
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        for name in ("teacher", "degradation"):
            if config.get(name) is not None:
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    # ------------------------------------------------------------------ the equations
    def _adv(self, logits, target_is_real):
        return adversarial_loss(logits, target_is_real, self.adversarial)

    def discriminator_loss(self, real_logits, fake_lq_logits, fake_hq_logits):
        """Per-sample L_D, ``[N]``, from D's logits on y, G(x) and G(y)."""
        real_term = self._adv(real_logits, True)
        lq_branch = 0.5 * (real_term + self._adv(fake_lq_logits, False))
        hq_branch = 0.5 * (real_term + self._adv(fake_hq_logits, False))
        return self.lambda1 * lq_branch + self.lambda2 * hq_branch

    def generator_loss_terms(
        self, lq, hq, enhanced_lq, enhanced_hq, fake_lq_logits, fake_hq_logits, enhanced_reshaded=None,
        restoration_target=None, enhanced_synthetic=None, synthetic_clean=None, enhanced_plain=None,
    ):
        """Per-sample generator loss terms, a dict of ``[N]`` tensors (``g_loss`` is L_G), from the
        images, D's logits on G(x) and G(y), G((s x)~) (``enhanced_reshaded``), the teacher's
        T(x) (``restoration_target``, from `restoration_target`), and G(s~) and s for the paired
        synthetic term (``enhanced_synthetic``, ``synthetic_clean``), and G(x) on the undegraded
        crop (``enhanced_plain``); each None when its term is off or not measured: then 0."""
        adv = self.lambda1 * self._adv(fake_lq_logits, True) + self.lambda2 * self._adv(fake_hq_logits, True)
        iu = illumination_uniformity_loss(enhanced_lq, self.iu_patch_sizes)
        te = self._structure(lq, enhanced_lq) + self._structure(hq, enhanced_hq)
        terms = LOSS_VARIANT_TERMS[self.variant]
        use_iu, use_te = "illumination" in terms, "structure" in terms
        sp = (iu if use_iu else 0.0 * iu) + self.beta * (te if use_te else 0.0 * te)
        identity = ops.mean(ops.abs(hq - enhanced_hq), axis=[1, 2, 3])
        if enhanced_reshaded is None:
            shading = ops.zeros_like(identity)
        else:
            shading = shading_consistency_loss(lq, enhanced_lq, enhanced_reshaded)
        if restoration_target is None:
            restoration = ops.zeros_like(identity)
        else:
            restoration = restoration_consistency_loss(restoration_target, enhanced_lq)
        if enhanced_synthetic is None:
            synthetic = ops.zeros_like(identity)
        else:
            synthetic = synthetic_restoration_loss(synthetic_clean, enhanced_synthetic)
        texture = ops.zeros_like(identity) if enhanced_plain is None else texture_keeping_loss(lq, enhanced_plain)
        total = (adv + self.alpha * sp + self.identity_weight * identity + self.shading_consistency * shading
                 + self.restoration_consistency * restoration + self.synthetic_restoration * synthetic
                 + self.texture_keeping * texture)
        return {
            "g_loss": total, "adv_loss": adv, "iu_loss": iu, "te_loss": te, "sp_loss": sp,
            "identity_loss": identity, "shading_loss": shading, "restoration_loss": restoration,
            "synthetic_loss": synthetic, "texture_loss": texture,
        }

    def _structure(self, image, enhanced):
        return structure_loss(
            image, enhanced, self.ssim_window, self.ssim_sigma,
            noise_stddev=self.structure_noise, seed=self.noise_seed,
        )

    # ------------------------------------------------------------------ the networks on a batch
    def discriminator_losses(self, real_hq, enhanced_lq, enhanced_hq, training):
        """Per-sample L_D, ``[N]``. One D pass over [y, G(x), G(y)] (D normalises per sample)."""
        logits = self.discriminator(ops.concatenate([real_hq, enhanced_lq, enhanced_hq], 0), training=training)
        return self.discriminator_loss(*ops.split(logits, 3, axis=0))

    def generator_losses(self, lq, hq, enhanced_lq, enhanced_hq, training, **extra):
        """`generator_loss_terms` with D's logits on [G(x), G(y)], one D pass; ``extra``: its
        optional images (``enhanced_reshaded``, ``restoration_target``, ``enhanced_synthetic``,
        ``synthetic_clean``, ``enhanced_plain``)."""
        logits = self.discriminator(ops.concatenate([enhanced_lq, enhanced_hq], 0), training=training)
        return self.generator_loss_terms(lq, hq, enhanced_lq, enhanced_hq, *ops.split(logits, 2, axis=0), **extra)

    def restoration_target(self, lq):
        """T(x), the teacher's output on the undegraded LQ batch ``[N, H, W, C]`` (the loss takes
        no gradient through it), or None without a teacher (the TensorFlow step; the JAX step
        calls the teacher statelessly)."""
        if self.teacher is None:
            return None
        return self.teacher(lq, training=False)

    def _enhance_both(self, lq, hq, training):
        enhanced = self.generator(ops.concatenate([lq, hq], axis=0), training=training)
        return ops.split(enhanced, 2, axis=0)

    def _generator_batch(self, lq, hq, synthetic=None):
        """G's one training pass: ``[x~, y]``, then ``(s x)~`` with the shading-consistency term,
        s~ (``synthetic``'s shaded scenes, degraded like x) with the paired synthetic term and x
        itself with the texture-keeping term (`_split_enhanced` takes G's output on it apart).
        (s x)~ is x shaded by a random field s and then degraded with draws of its own: shading comes before the blur and the sensor's
        noise, as in a microscope; shading x~ instead would scale its noise down where s is dark,
        and asking G(s x~) to match G(x~) would then teach G to amplify noise there."""
        parts = [self._generator_input(lq), hq]
        if self.shading_consistency:
            parts.append(self._generator_input(self._reshaded(lq)))
        if self.synthetic_restoration:
            parts.append(self._generator_input(synthetic[0]))
        if self.texture_keeping:
            parts.append(lq)
        return ops.concatenate(parts, axis=0)

    def _split_enhanced(self, enhanced, synthetic=None):
        """``(G(x~), G(y), extra)`` from G's output on `_generator_batch` (and its ``synthetic``
        scenes); ``extra`` holds `generator_loss_terms`' ``enhanced_reshaded`` (G((s x)~)),
        ``enhanced_synthetic`` (G(s~)), ``synthetic_clean`` (s) and ``enhanced_plain`` (G(x)),
        None when their terms are off."""
        optional = (self.shading_consistency, self.synthetic_restoration, self.texture_keeping)
        parts = ops.split(enhanced, 2 + sum(bool(weight) for weight in optional), axis=0)
        enhanced_lq, enhanced_hq, rest = parts[0], parts[1], list(parts[2:])
        extra = {"enhanced_reshaded": rest.pop(0) if self.shading_consistency else None,
                 "enhanced_synthetic": rest.pop(0) if self.synthetic_restoration else None,
                 "synthetic_clean": synthetic[1] if self.synthetic_restoration else None,
                 "enhanced_plain": rest.pop(0) if self.texture_keeping else None}
        return enhanced_lq, enhanced_hq, extra

    def _reshaded(self, images):
        """``[N, H, W, C]`` images times random smooth fields (`shading_field`), clipped to [0, 1]."""
        count, height, width = ops.shape(images)[0], ops.shape(images)[1], ops.shape(images)[2]
        draws = keras.random.uniform((count, SHADING_DRAWS), seed=self.noise_seed)
        rows, cols = ops.linspace(-1.0, 1.0, height), ops.linspace(-1.0, 1.0, width)
        field = shading_field(draws, rows, cols, self.shading_consistency_strength, ops)
        return ops.clip(images * ops.cast(field[:, :, :, None], images.dtype), 0.0, 1.0)

    def _unpack(self, data, training=True):
        """``(lq, hq, synthetic)`` from a dataset element ``(lq, hq)`` or ``(lq, hq, (shaded,
        clean))`` (`ssp_keras.data.pipeline.make_unpaired_dataset`) or from ``train_on_batch(lq, hq)``;
        ``synthetic``, the ``(shaded, clean)`` scenes, is None when the paired synthetic term is off,
        and is required in training when it is on."""
        lq, hq, synthetic = keras.utils.unpack_x_y_sample_weight(data)
        if hq is None:
            raise ValueError("SSPNet trains on (lq, hq) pairs of unpaired batches; got a single tensor")
        if synthetic is not None and not (isinstance(synthetic, (tuple, list)) and len(synthetic) == 2):
            raise ValueError("SSPNet's third input element must be a (shaded, clean) pair of synthetic scene "
                             "batches (make_unpaired_dataset(..., synthetic_scenes=True)); sample weights "
                             "are not supported")
        if not self.synthetic_restoration:
            synthetic = None
        elif synthetic is not None:
            synthetic = tuple(ops.cast(images, "float32") for images in synthetic)
        elif training:
            raise ValueError("SSPNet with synthetic_restoration > 0 trains on (lq, hq, (shaded, clean)) elements: "
                             "make the dataset with make_unpaired_dataset(..., synthetic_scenes=True)")
        return ops.cast(lq, "float32"), ops.cast(hq, "float32"), synthetic

    def _generator_input(self, lq):
        """G's LQ input in training: x~, the restoration degradation of x (and the denoising noise),
        or x itself when both are off."""
        if self.degradation is not None:
            lq = self.degradation(lq, training=True)
        if not self.denoising_noise:
            return lq
        count = ops.shape(lq)[0]
        shot = self.denoising_noise * keras.random.uniform((count,), seed=self.noise_seed)
        return add_poisson_gaussian_noise(lq, shot, ops.zeros_like(shot), self.noise_seed)


def _with_loss_scaling(optimizer, network):
    """``optimizer``, wrapped in a `LossScaleOptimizer` when ``network`` computes in float16
    (float16 gradients underflow without loss scaling)."""
    if network.dtype_policy.compute_dtype != "float16" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


def build_sspnet(config, sync_batch_norm: bool | None = None, fused_kernels: bool = True, dtype=None) -> SSPNet:
    """An uncompiled `SSPNet` from an ``SSPNetConfig``.

    ``fused_kernels``: see `SSPGenerator`. ``dtype``: the dtype policy of the model, G's and D's
    layers (``"mixed_bfloat16"``, ...; None: Keras' global policy); losses are computed in float32.
    """
    from ssp_keras.networks import build_discriminator, build_generator

    loss = dataclasses.asdict(config.loss)
    teacher_source = loss.pop("restoration_teacher")
    return SSPNet(
        generator=build_generator(config, sync_batch_norm=sync_batch_norm, fused_kernels=fused_kernels, dtype=dtype),
        discriminator=build_discriminator(config, sync_batch_norm=sync_batch_norm, dtype=dtype),
        **loss,
        teacher=None if teacher_source is None else load_teacher(teacher_source, config.data.channels),
        degradation=build_degradation(config),
        seed=config.train.seed,
        dtype=dtype,
        name="ssp_net",
    )


def load_teacher(source: str, channels: int) -> keras.Model:
    """The frozen restoration-consistency teacher: the generator saved at ``source`` (a ``.keras``
    file, a run folder or a pretrained name, as ``--init-from``), in float32 (`SSPNet` freezes
    it). Raises `InputError` naming ``source`` when it is missing, not a generator, or takes
    other than ``channels`` channels."""
    from ssp_keras.errors import InputError
    from ssp_keras.inference.compiled import model_channels
    from ssp_keras.inference.loading import load_generator

    teacher = load_generator(source)
    if model_channels(teacher) != channels:
        raise InputError(f"the restoration teacher '{source}' takes {model_channels(teacher)}-channel images; "
                         f"this configuration trains on {channels}")
    return teacher


def build_degradation(config) -> RestorationDegradation | None:
    """The ``config.degradation`` model (seeded from ``train.seed``), or None when it is off."""
    degradation = RestorationDegradation(**dataclasses.asdict(config.degradation), seed=config.train.seed)
    return degradation if degradation.active else None


def build_optimizers(config, steps_per_epoch: int, fused: bool = True):
    """The two Adam optimisers of SPEC section 4, sharing the warm-up/halving schedule.

    fused: `FusedAdam` (one fused update kernel per variable, same results) or Keras' own Adam
    (the benchmarks compare the two).
    """
    from ssp_keras.training.schedule import schedule_from_config

    train = config.train
    adam = FusedAdam if fused else keras.optimizers.Adam
    generator_optimizer = adam(
        learning_rate=schedule_from_config(train, steps_per_epoch),
        beta_1=train.generator_beta_1,
        beta_2=train.generator_beta_2,
        name="generator_adam",
    )
    discriminator_optimizer = adam(
        learning_rate=schedule_from_config(train, steps_per_epoch),
        beta_1=train.discriminator_beta_1,
        beta_2=train.discriminator_beta_2,
        name="discriminator_adam",
    )
    return generator_optimizer, discriminator_optimizer
