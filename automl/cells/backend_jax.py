"""The supernet's gradients and steps on JAX: `stateless_call` + `jax.value_and_grad`.

Keras's JAX trainer compiles `train_step(state, data)` with `jax.jit` and threads the
model's state through it as arrays. The search step itself is written once, against
variables (`SuperNet.search_step`); here it runs inside a `StatelessScope` that maps
every variable to its value in `state`, so its assignments (optimizer updates, the
unrolled weights of second-order DARTS, batch-norm statistics) become the new state,
and the whole step, five forward/backward passes for "darts2", is one jitted program.
The alpha optimizer's variables travel in the model's non-trainable state.
"""

from __future__ import annotations

import jax
from keras import ops

from automl.training.keras_api import stateless_scope


def gradients(model, batch, variables):
    """(gradients of the batch loss with respect to `variables`, loss, logits).

    The forward pass is `model.stateless_call` on the variables' current values (the
    enclosing scope's); its batch-norm updates are assigned back, as a stateful pass
    would.
    """
    x, y = batch[0], batch[1]
    trainable = model.trainable_variables
    position = {id(v): i for i, v in enumerate(trainable)}
    chosen = [position[id(v)] for v in variables]
    values = [v.value for v in trainable]
    non_trainable = model.non_trainable_variables
    non_trainable_values = [v.value for v in non_trainable]

    def loss_fn(selected):
        current = list(values)
        for i, value in zip(chosen, selected, strict=True):
            current[i] = value
        logits, updated = model.stateless_call(current, non_trainable_values, x, training=True)
        return model.batch_loss(y, logits), (logits, updated)

    (loss, (logits, updated)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        [values[i] for i in chosen]
    )
    for variable, value in zip(non_trainable, updated, strict=True):
        variable.assign(value)
    return list(grads), loss, logits


def snapshot(variables) -> list:
    """The variables' current values (JAX arrays do not change under assignment)."""
    return [ops.convert_to_tensor(v.value) for v in variables]


def _stateless(groups, values, step, data):
    mapping = [
        (variable, value)
        for group, group_values in zip(groups, values, strict=True)
        for variable, value in zip(group, group_values, strict=True)
    ]
    with stateless_scope(mapping) as scope:
        logs = step(data)
    state = tuple([scope.get_current_value(v) for v in group] for group in groups)
    return logs, state


def train_step(model, state, data):
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )
    return _stateless(groups, state, model.search_step, data)


def test_step(model, state, data):
    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.metrics_variables,
    )
    return _stateless(groups, state, model.evaluate_step, data)


fused_batch_norm = None  # the layer's own keras.ops formula
