"""The supernet's gradients and steps on TensorFlow: `tf.GradientTape`, stateful steps.

Keras compiles `train_step` into one `tf.function` (with XLA when `jit_compile=True`);
the step updates the variables in place. Batch normalisation uses TensorFlow's fused
kernel, about 8 graph ops instead of 34, which is what a supernet of hundreds of
normalisations costs to trace.
"""

from __future__ import annotations

import tensorflow as tf


def gradients(model, batch, variables):
    """(gradients of the batch loss with respect to `variables`, loss, logits)."""
    x, y = batch[0], batch[1]
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = model.batch_loss(y, logits)
    grads = tape.gradient(loss, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables, strict=True)]
    return grads, loss, logits


def snapshot(variables) -> list:
    """The variables' current values, unaffected by later assignments."""
    return [tf.identity(v.value) for v in variables]


def train_step(model, data):
    return model.search_step(data)


def test_step(model, data):
    return model.evaluate_step(data)


def fused_batch_norm(inputs, scale, offset, epsilon: float):
    """(normalised inputs, batch mean, batch variance) over all axes but the last."""
    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs, scale, offset, epsilon=epsilon, is_training=True
    )
    return outputs, mean, variance
