"""`SSPNet`'s training and test steps on the JAX backend.

As keras.io's "Customizing what happens in fit() with JAX" writes them: a stateless
``train_step(state, data) -> (logs, state)``, the state being Keras' ``(trainable_variables,
non_trainable_variables, optimizer_variables, metrics_variables)`` values; the networks run through
``stateless_call``, gradients come from ``jax.value_and_grad``, both optimisers update with
``stateless_apply``, the loss trackers with ``stateless_update_state``. The equations are `SSPNet`'s
(`ssp_keras.training.model`); `ssp_keras.training.tensorflow_step` is the same step on TensorFlow.

What the state holds for `SSPNet`: the trainable variables of G and D; the non-trainable ones of G
and D (batch-norm statistics) and of `SSPNet` itself (the history pool's images and count, the
seed generators' states); both optimisers' variables, G's first (`OptimizerPair`); the loss
trackers' totals and counts. Nothing is read from or written to a variable during the step.

G runs once per step, as on TensorFlow, where G's tape stays open across D's update:
``jax.vjp`` returns G's outputs and the pullback of its pass; D is updated on those outputs; L_G
(with the updated D) is differentiated with respect to G's outputs and the pullback carries that
gradient through G.

Losses are means over the batch: under ``keras.distribution.DataParallel`` the step is one program
over the global batch, so a step on several devices is the step on one with the same global batch.
"""

from __future__ import annotations

import jax
import keras
from keras import ops


class _Positions:
    """Where each variable's value sits in a list of values that follows ``variables``."""

    def __init__(self, variables):
        self._index = {id(variable): position for position, variable in enumerate(variables)}

    def take(self, values, variables) -> list:
        return [values[self._index[id(variable)]] for variable in variables]

    def replace(self, values, variables, new_values) -> list:
        values = list(values)
        for variable, value in zip(variables, new_values, strict=True):
            values[self._index[id(variable)]] = value
        return values


def _stateless(variables, values, function):
    """``function()`` with ``variables`` at ``values`` and every assignment to them collected:
    ``(result, values after)``. (A `keras.StatelessScope`, as Keras' own ``stateless_call`` uses.)"""
    with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        result = function()
    updated = [scope.get_current_value(variable) for variable in variables]
    return result, [old if new is None else new for old, new in zip(values, updated)]


def _scaled(optimizer, optimizer_values, loss):
    """``optimizer.scale_loss(loss)`` (a `LossScaleOptimizer`'s dynamic scale under mixed_float16)."""
    result, _ = _stateless(optimizer.variables, optimizer_values, lambda: optimizer.scale_loss(loss))
    return result


class JaxTrainStep:
    """``train_step(state, data)`` and ``test_step(state, data)`` of `SSPNet` on JAX (a mixin of `SSPNet`)."""

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metrics_values = state
        lq, hq, synthetic = self._unpack(data)
        g, d = self.generator, self.discriminator
        trainables, non_trainables = _Positions(self.trainable_variables), _Positions(self.non_trainable_variables)
        g_trainable, d_trainable = (trainables.take(trainable, net.trainable_variables) for net in (g, d))
        g_state, d_state = (non_trainables.take(non_trainable, net.non_trainable_variables) for net in (g, d))
        own = self._own_state_variables()  # the history pool, the noise seeds
        own_state = non_trainables.take(non_trainable, own)
        split = len(self.generator_optimizer.variables)
        g_optimizer_values, d_optimizer_values = optimizer_values[:split], optimizer_values[split:]

        # 1. G enhances x~ and y (and (s x)~, s~ and x, for the shading-consistency, paired synthetic
        #    and texture-keeping terms) in one pass; jax.vjp keeps the pass's pullback for step 3. The teacher (if any)
        #    answers x.
        generator_batch, own_state = _stateless(own, own_state, lambda: self._generator_batch(lq, hq, synthetic))
        restoration_target = self._teacher_output(non_trainables, non_trainable, lq)

        def generator_pass(g_trainable):
            return g.stateless_call(g_trainable, g_state, generator_batch, training=True)

        enhanced, g_pullback, g_state = jax.vjp(generator_pass, g_trainable, has_aux=True)

        # 2. D update: L_D on y and on G(x~), G(y) (through the history pool, if any), as constants.
        fakes = jax.lax.stop_gradient(enhanced[: 2 * ops.shape(hq)[0]])
        if self.fake_pool is not None:
            fakes, own_state = _stateless(own, own_state, lambda: self.fake_pool(fakes))

        def discriminator_objective(d_trainable, d_state):
            logits, d_state = d.stateless_call(d_trainable, d_state, ops.concatenate([hq, fakes], axis=0), training=True)
            per_sample = self.discriminator_loss(*ops.split(logits, 3, axis=0))
            return _scaled(self.discriminator_optimizer, d_optimizer_values, ops.mean(per_sample)), (per_sample, d_state)

        (_, (d_per_sample, d_state)), d_gradients = jax.value_and_grad(discriminator_objective, has_aux=True)(
            d_trainable, d_state)
        d_trainable, d_optimizer_values = self.discriminator_optimizer.stateless_apply(
            d_optimizer_values, d_gradients, d_trainable)

        # 3. G update: L_G with the updated D, differentiated with respect to G's outputs, then
        #    carried through G by the pullback of step 1.
        def generator_objective(enhanced, d_state, own_state):
            enhanced_lq, enhanced_hq, extra = self._split_enhanced(enhanced, synthetic)
            logits, d_state = d.stateless_call(
                d_trainable, d_state, ops.concatenate([enhanced_lq, enhanced_hq], axis=0), training=True)
            terms, own_state = _stateless(own, own_state, lambda: self.generator_loss_terms(
                lq, hq, enhanced_lq, enhanced_hq, *ops.split(logits, 2, axis=0), **extra,
                restoration_target=restoration_target))
            g_loss = _scaled(self.generator_optimizer, g_optimizer_values, ops.mean(terms["g_loss"]))
            return g_loss, (terms, d_state, own_state)

        (_, (g_terms, d_state, own_state)), output_gradient = jax.value_and_grad(generator_objective, has_aux=True)(
            enhanced, d_state, own_state)
        (g_gradients,) = g_pullback(output_gradient)
        g_trainable, g_optimizer_values = self.generator_optimizer.stateless_apply(
            g_optimizer_values, g_gradients, g_trainable)

        logs, metrics_values = self._track_stateless(metrics_values, d_per_sample, g_terms)
        trainable = trainables.replace(trainable, g.trainable_variables + d.trainable_variables, g_trainable + d_trainable)
        non_trainable = non_trainables.replace(
            non_trainable, g.non_trainable_variables + d.non_trainable_variables + own, g_state + d_state + own_state)
        return logs, (trainable, non_trainable, g_optimizer_values + d_optimizer_values, metrics_values)

    def test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        lq, hq, _ = self._unpack(data, training=False)  # the synthetic term is a training signal only
        g, d = self.generator, self.discriminator
        trainables, non_trainables = _Positions(self.trainable_variables), _Positions(self.non_trainable_variables)
        own = self._own_state_variables()
        own_state = non_trainables.take(non_trainable, own)

        enhanced, _ = g.stateless_call(trainables.take(trainable, g.trainable_variables),
                                       non_trainables.take(non_trainable, g.non_trainable_variables),
                                       ops.concatenate([lq, hq], axis=0), training=False)
        logits, _ = d.stateless_call(trainables.take(trainable, d.trainable_variables),
                                     non_trainables.take(non_trainable, d.non_trainable_variables),
                                     ops.concatenate([hq, enhanced], axis=0), training=False)
        real, fake_lq, fake_hq = ops.split(logits, 3, axis=0)
        d_per_sample = self.discriminator_loss(real, fake_lq, fake_hq)
        g_terms, own_state = _stateless(own, own_state, lambda: self.generator_loss_terms(
            lq, hq, *ops.split(enhanced, 2, axis=0), fake_lq, fake_hq,
            restoration_target=self._teacher_output(non_trainables, non_trainable, lq)))
        logs, metrics_values = self._track_stateless(metrics_values, d_per_sample, g_terms)
        return logs, (trainable, non_trainables.replace(non_trainable, own, own_state), metrics_values)

    def _own_state_variables(self) -> list:
        """`SSPNet`'s non-trainable variables that are none of G's, D's or the teacher's: the
        history pool's images and count, and the seed generators' states."""
        networks = [self.generator, self.discriminator] + ([self.teacher] if self.teacher is not None else [])
        owned = {id(v) for network in networks for v in network.non_trainable_variables}
        return [v for v in self.non_trainable_variables if id(v) not in owned]

    def _teacher_output(self, non_trainables, non_trainable, lq):
        """T(x) from the state's values of the teacher's (all non-trainable) weights, or None
        without a teacher (`SSPNet.restoration_target` on TensorFlow)."""
        if self.teacher is None:
            return None
        values = non_trainables.take(non_trainable, self.teacher.non_trainable_variables)
        output, _ = self.teacher.stateless_call([], values, lq, training=False)
        return output

    def _track_stateless(self, metrics_values, d_per_sample, g_terms):
        """The loss trackers updated with this step's per-sample losses: ``(logs, their new values)``."""
        per_sample = {"d_loss": d_per_sample, **g_terms}
        logs, updated, start = {}, [], 0
        for name, tracker in self.trackers.items():
            values = metrics_values[start:start + len(tracker.variables)]
            start += len(tracker.variables)
            values = tracker.stateless_update_state(values, per_sample[name])
            logs[name] = tracker.stateless_result(values)
            updated += values
        return logs, updated
