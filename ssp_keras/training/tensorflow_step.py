"""`SSPNet`'s training and test steps on the TensorFlow backend.

As keras.io's "Customizing what happens in fit() with TensorFlow" writes a GAN's ``train_step``:
``tf.GradientTape`` records the forward passes, each optimiser applies its gradients. The
equations are `SSPNet`'s (`ssp_keras.training.model`); `ssp_keras.training.jax_step` is the same
step on JAX. This module imports TensorFlow: `SSPNet` uses it only on the TensorFlow backend.

Losses are reduced with ``tf.nn.compute_average_loss`` (the sum over the replica's samples divided
by the global batch), so gradients summed across replicas equal those of one replica on the same
global batch.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops


class TensorFlowTrainStep:
    """``train_step(data)`` and ``test_step(data)`` of `SSPNet` on TensorFlow (a mixin of `SSPNet`)."""

    def train_step(self, data):
        lq, hq, synthetic = self._unpack(data)
        target = self.restoration_target(lq)  # the teacher's T(x), outside G's tape: a constant
        with tf.GradientTape() as generator_tape:
            # 1. G enhances x~ and y (and (s x)~, s~ and x, for the shading-consistency, paired
            #    synthetic and texture-keeping terms) in one pass.
            enhanced = self.generator(self._generator_batch(lq, hq, synthetic), training=True)
            enhanced_lq, enhanced_hq, extra = self._split_enhanced(enhanced, synthetic)
            # 2. D is updated while G's tape is open. Why inside: the tape must hold G's pass above
            #    and the G loss below, and that loss must use the updated D (SPEC section 3); closing
            #    the tape here would mean running G a second time for L_G. Why stop_recording: D's
            #    update (its forward and backward passes, Adam's assignments) is no part of L_G's
            #    graph; kept off G's tape, the tape holds no activations of it and G's gradient
            #    cannot see it (D also reads G's outputs through stop_gradient). jax_step does the
            #    same with jax.vjp.
            with generator_tape.stop_recording():
                d_per_sample = self._discriminator_update(hq, enhanced_lq, enhanced_hq)
            # 3. L_G with the updated D.
            g_terms = self.generator_losses(lq, hq, enhanced_lq, enhanced_hq, training=True, **extra,
                                            restoration_target=target)
            g_loss = tf.nn.compute_average_loss(g_terms["g_loss"])
            scaled = self.generator_optimizer.scale_loss(g_loss)
        variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(generator_tape.gradient(scaled, variables), variables))
        return self._track(d_per_sample, g_terms)

    def _discriminator_update(self, hq, enhanced_lq, enhanced_hq):
        fake_lq = tf.stop_gradient(enhanced_lq)
        fake_hq = tf.stop_gradient(enhanced_hq)
        if self.fake_pool is not None:
            fake_lq, fake_hq = ops.split(self.fake_pool(ops.concatenate([fake_lq, fake_hq], 0)), 2, axis=0)
        with tf.GradientTape() as tape:
            per_sample = self.discriminator_losses(hq, fake_lq, fake_hq, training=True)
            scaled = self.discriminator_optimizer.scale_loss(tf.nn.compute_average_loss(per_sample))
        variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return per_sample

    def test_step(self, data):
        lq, hq, _ = self._unpack(data, training=False)  # the synthetic term is a training signal only
        enhanced_lq, enhanced_hq = self._enhance_both(lq, hq, training=False)
        d_per_sample = self.discriminator_losses(hq, enhanced_lq, enhanced_hq, training=False)
        g_terms = self.generator_losses(lq, hq, enhanced_lq, enhanced_hq, training=False,
                                        restoration_target=self.restoration_target(lq))
        return self._track(d_per_sample, g_terms)

    def _track(self, d_per_sample, g_terms):
        self.trackers["d_loss"].update_state(d_per_sample)
        for name, per_sample in g_terms.items():
            self.trackers[name].update_state(per_sample)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
