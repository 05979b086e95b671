"""The differentiable-search supernet with one train step per search method.

`SuperNet` is a `keras.Model` of `SearchCell`s whose architecture parameters
(alphas) are its own weights, created with `add_weight` and told apart from the
network weights by identity. `compile` takes one optimizer per group, as in the
Keras GAN guide, and the search method:

- "milenas" (mixed level; MiLeNAS, He et al., CVPR 2020): one backward pass on the
  train batch gives grad_w L_tr and grad_alpha L_tr together, one on the val batch
  gives grad_alpha L_val; alpha moves along grad L_tr + lambda * grad L_val, w along
  grad L_tr. Two forward/backward passes per step.
- "darts1" (bilevel, first order; DARTS, Liu et al., "DARTS: Differentiable
  Architecture Search", ICLR 2019): alpha on grad_alpha L_val, then w on the
  train batch at the new alpha. Two passes.
- "darts2" (bilevel, second order): alpha on the gradient through one unrolled
  weight step w' = w - xi * grad_w L_tr, with the Hessian-vector product by
  finite differences (eps = 0.01 / ||grad_w' L_val||), then the w step. Five passes.

Weight decay is added to the gradients (coupled, as PyTorch's SGD and Adam do),
after clipping the weight gradients to global norm 5.

Each batch of the training dataset is a pair `((x_train, y_train), (x_val, y_val))`.

The steps are written once against variables and `keras.ops`; the gradient and the
compiled step come from the backend's module (`automl.cells.backend`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from automl.cells import backend
from automl.cells.genotype import Genotype, derive_genotype
from automl.cells.layers import ResidualReduction, SearchCell
from automl.cells.ops import batch_norm

METHODS = ("milenas", "darts1", "darts2")

# Defaults of MiLeNAS (He et al., "MiLeNAS: Efficient Neural Architecture Search via
# Mixed-Level Reformulation", CVPR 2020).
WEIGHT_LR, WEIGHT_LR_MIN, WEIGHT_MOMENTUM, WEIGHT_DECAY = 0.025, 0.001, 0.9, 3e-4
ALPHA_LR, ALPHA_BETAS, ALPHA_DECAY = 3e-4, (0.5, 0.999), 1e-3
GRAD_CLIP, LAMBDA, ALPHA_INIT_STD = 5.0, 1.0, 1e-3


def default_weight_optimizer(decay_steps: int) -> keras.optimizers.Optimizer:
    """SGD, lr 0.025 cosine-annealed to 0.001 over `decay_steps`, momentum 0.9."""
    schedule = keras.optimizers.schedules.CosineDecay(
        WEIGHT_LR, max(int(decay_steps), 1), alpha=WEIGHT_LR_MIN / WEIGHT_LR
    )
    return keras.optimizers.SGD(schedule, momentum=WEIGHT_MOMENTUM)


def default_alpha_optimizer(learning_rate: float = ALPHA_LR) -> keras.optimizers.Optimizer:
    """Adam, lr 3e-4 unless given, betas (0.5, 0.999)."""
    return keras.optimizers.Adam(learning_rate, beta_1=ALPHA_BETAS[0], beta_2=ALPHA_BETAS[1])


class SuperNet(keras.Model):
    """A DARTS or NAS-Bench-201 supernet holding its own alphas.

    Args:
        num_classes: output classes (the model returns logits).
        input_shape: (height, width, channels) of one image; the net is built on it.
        space: "darts" (cells with reductions at cells//3 and 2*cells//3, at least 3
            cells) or "nb201" (3 stages of `cells` cells, residual reductions between).
        cells: number of cells (DARTS) or cells per stage (NB201).
        channels: channels of the first cells (doubled at every reduction).
        stem_multiplier: DARTS stem width = stem_multiplier * channels.
        stages: NB201 only; stages of cells (3 in NAS-Bench-201; fewer for tiny inputs).
        seed: seed of the alpha initialisation (1e-3 * randn).

    Example:
        >>> net = SuperNet(10, (8, 8, 1), cells=3, channels=4)  # doctest: +SKIP
        >>> net.compile(method="milenas")  # doctest: +SKIP
        >>> net.fit(tf.data.Dataset.zip((train_ds, val_ds)), epochs=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes: int,
        input_shape: tuple[int, int, int],
        space: str = "darts",
        cells: int = 8,
        channels: int = 16,
        stem_multiplier: int = 3,
        stages: int = 3,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if space not in ("darts", "nb201"):
            raise ValueError(f"space must be 'darts' or 'nb201'. Received: {space=}")
        if space == "darts" and cells < 3:
            raise ValueError(f"A DARTS supernet needs at least 3 cells. Received: {cells=}")
        self.space = space
        self.stem = keras.Sequential(
            [
                keras.layers.ZeroPadding2D(1),
                keras.layers.Conv2D(
                    channels * (stem_multiplier if space == "darts" else 1), 3, use_bias=False
                ),
                batch_norm(),
            ]
        )
        if space == "darts":
            self.blocks = self._darts_cells(cells, channels)
        else:
            self.blocks = self._nb201_cells(cells, channels, stages)
        self.head = keras.Sequential(
            ([batch_norm(), keras.layers.ReLU()] if space == "nb201" else [])
            + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)]
        )
        init = keras.initializers.RandomNormal(stddev=ALPHA_INIT_STD, seed=seed)
        kinds = ("normal", "reduction") if space == "darts" else ("nb201",)
        shapes = {b.kind: b.alpha_shape for b in self.blocks if isinstance(b, SearchCell)}
        self.alphas = [
            self.add_weight(shape=_shape(kind, shapes), initializer=init, name=f"alpha_{kind}")
            for kind in kinds
        ]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.val_loss_tracker = keras.metrics.Mean(name="search_val_loss")
        self.val_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(
            name="search_val_accuracy"
        )
        self.build((None, *input_shape))  # now, so that compile can build the optimizers

    @staticmethod
    def _darts_cells(cells: int, channels: int) -> list[SearchCell]:
        blocks, reduction_prev = [], False
        for index in range(cells):
            reduction = index in (cells // 3, 2 * cells // 3)
            channels = channels * 2 if reduction else channels
            kind = "reduction" if reduction else "normal"
            blocks.append(SearchCell(kind, channels, reduction_prev))
            reduction_prev = reduction
        return blocks

    @staticmethod
    def _nb201_cells(cells: int, channels: int, stages: int) -> list[keras.layers.Layer]:
        blocks = []
        for stage in range(stages):
            if stage:
                blocks.append(ResidualReduction(channels * 2**stage))
            blocks += [SearchCell("nb201", channels * 2**stage) for _ in range(cells)]
        return blocks

    def build(self, input_shape):
        self.stem.build(input_shape)
        shape = self.stem.compute_output_shape(input_shape)
        states = [shape, shape]
        for block in self.blocks:
            if not isinstance(block, SearchCell):
                block_input = states[-1]
            elif block.kind == "nb201":
                block_input = [states[-1], block.alpha_shape]
            else:
                block_input = [states[0], states[1], block.alpha_shape]
            block.build(block_input)
            out = block.compute_output_shape(block_input)
            states = [states[-1], out]
        self.head.build(states[-1])

    def call(self, inputs, training=None):
        weights = {
            kind: ops.softmax(alpha, axis=-1)
            for kind, alpha in zip(self._alpha_kinds(), self.alphas, strict=True)
        }
        x = self.stem(inputs, training=training)
        states = [x, x]
        for block in self.blocks:
            if not isinstance(block, SearchCell):
                states = [block(states[-1], training=training)]
            elif block.kind == "nb201":
                states = [block([states[-1], weights["nb201"]], training=training)]
            else:
                out = block([states[0], states[1], weights[block.kind]], training=training)
                states = [states[1], out]
        return self.head(states[-1], training=training)

    @property
    def network_weights(self) -> list:
        """The trainable weights that are not alphas (told apart by identity)."""
        alpha_ids = {id(a) for a in self.alphas}
        return [v for v in self.trainable_variables if id(v) not in alpha_ids]

    def _alpha_kinds(self) -> tuple[str, ...]:
        return ("normal", "reduction") if self.space == "darts" else ("nb201",)

    def genotype(self) -> Genotype:
        """The genotype derived from the current alphas."""
        return derive_genotype(*[np.asarray(ops.convert_to_numpy(a)) for a in self.alphas])

    def compile(
        self,
        weight_optimizer: keras.optimizers.Optimizer | None = None,
        alpha_optimizer: keras.optimizers.Optimizer | None = None,
        method: str = "milenas",
        lambda_: float = LAMBDA,
        weight_decay: float = WEIGHT_DECAY,
        alpha_weight_decay: float = ALPHA_DECAY,
        grad_clip: float | None = GRAD_CLIP,
        hessian_eps: float = 0.01,
        **kwargs,
    ) -> None:
        """Configure the search.

        Args:
            weight_optimizer: for the network weights; default `default_weight_optimizer`
                over 10,000 steps.
            alpha_optimizer: for the alphas; default `default_alpha_optimizer()`.
            method: "milenas", "darts1" or "darts2".
            lambda_: weight of the validation gradient in "milenas".
            weight_decay: coupled L2 on the weights (added to the clipped gradient).
            alpha_weight_decay: coupled L2 on the alphas.
            grad_clip: global-norm clip of the weight gradients (None: no clipping).
            hessian_eps: "darts2" finite-difference step, divided by ||grad_w' L_val||.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile=True`).

        Raises:
            ValueError: if the method is unknown.
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: {method=}")
        self.weight_optimizer = weight_optimizer or default_weight_optimizer(10_000)
        previous = getattr(self, "alpha_optimizer", None)
        self.alpha_optimizer = alpha_optimizer or default_alpha_optimizer()
        self.method = method
        self.lambda_ = float(lambda_)
        self.weight_decay = float(weight_decay)
        self.alpha_weight_decay = float(alpha_weight_decay)
        self.grad_clip = grad_clip
        self.hessian_eps = float(hessian_eps)
        super().compile(optimizer=self.weight_optimizer, **kwargs)
        self.weight_optimizer.build(self.network_weights)
        self.alpha_optimizer.build(self.alphas)
        # The alpha optimizer's state is model state, so that a stateless step (JAX)
        # carries it from one step to the next like the weight optimizer's.
        # A second compile replaces the state of the first one's alpha optimizer.
        tracked = {id(v) for v in self.non_trainable_variables}
        for variable in previous.variables if previous is not None else []:
            if id(variable) in tracked:
                self._untrack_variable(variable)
        locked = self._tracker.locked
        self._tracker.unlock()  # the net is built; its state may still grow here
        for variable in self.alpha_optimizer.variables:
            self._track_variable(variable)
        if locked:
            self._tracker.lock()

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.accuracy_tracker,
            self.val_loss_tracker,
            self.val_accuracy_tracker,
        ]

    def train_step(self, *args):
        return backend.current().train_step(self, *args)

    def test_step(self, *args):
        return backend.current().test_step(self, *args)

    def search_step(self, data):
        """One search step on `((x_train, y_train), (x_val, y_val))`; returns the logs."""
        train, val, _ = keras.utils.unpack_x_y_sample_weight(data)
        weight_pass = self.alpha_step(train, val)
        self.weight_step(train, weight_pass)
        return {m.name: m.result() for m in self.metrics}

    def evaluate_step(self, data):
        """Loss and accuracy of one `(x, y)` batch in inference mode; returns the logs."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        logits = self(x, training=False)
        self.loss_tracker.update_state(self.batch_loss(y, logits))
        self.accuracy_tracker.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics[:2]}

    def alpha_step(self, train, val):
        """Update the alphas only, by the compiled method.

        Returns:
            For "milenas", the (gradients, loss, logits) of the weights' train pass to be
            reused by `weight_step`; otherwise None.
        """
        alphas = self.alphas
        weight_pass = None
        if self.method == "milenas":
            grads, loss, logits = self._gradients(train, alphas + self.network_weights)
            weight_pass = (grads[len(alphas) :], loss, logits)
            val_grads, val_loss, val_logits = self._gradients(val, alphas)
            alpha_grads = [
                g + self.lambda_ * v for g, v in zip(grads[: len(alphas)], val_grads, strict=True)
            ]
        elif self.method == "darts1":
            alpha_grads, val_loss, val_logits = self._gradients(val, alphas)
        else:
            alpha_grads, val_loss, val_logits = self._unrolled_alpha_gradients(train, val)
        self.val_loss_tracker.update_state(val_loss)
        self.val_accuracy_tracker.update_state(val[1], val_logits)
        self._apply(self.alpha_optimizer, alpha_grads, alphas, self.alpha_weight_decay)
        return weight_pass

    def weight_step(self, train, weight_pass=None) -> None:
        """Update the network weights only, on the train batch (or a reused pass)."""
        if weight_pass is None:
            weight_pass = self._gradients(train, self.network_weights)
        grads, loss, logits = weight_pass
        if self.grad_clip is not None:
            norm = _global_norm(grads)
            grads = [g * (self.grad_clip / ops.maximum(norm, self.grad_clip)) for g in grads]
        self._apply(self.weight_optimizer, grads, self.network_weights, self.weight_decay)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(train[1], logits)

    def _unrolled_alpha_gradients(self, train, val):
        weights = self.network_weights
        xi = ops.cast(self.weight_optimizer.learning_rate, self.alphas[0].dtype)
        train_grads, _, _ = self._gradients(train, weights)
        backup = backend.current().snapshot(weights)
        for v, w0, g in zip(weights, backup, train_grads, strict=True):
            v.assign(w0 - xi * (g + self.weight_decay * w0))
        grads, val_loss, val_logits = self._gradients(val, self.alphas + weights)
        alpha_grads, direction = grads[: len(self.alphas)], grads[len(self.alphas) :]
        eps = self.hessian_eps / (_global_norm(direction) + 1e-12)

        def alpha_grads_at(sign):
            for v, w0, d in zip(weights, backup, direction, strict=True):
                v.assign(w0 + sign * eps * d)
            return self._gradients(train, self.alphas)[0]

        plus, minus = alpha_grads_at(1.0), alpha_grads_at(-1.0)
        for v, w0 in zip(weights, backup, strict=True):
            v.assign(w0)
        scale = xi / (2.0 * eps)
        alpha_grads = [
            g - scale * (p - m) for g, p, m in zip(alpha_grads, plus, minus, strict=True)
        ]
        return alpha_grads, val_loss, val_logits

    def batch_loss(self, y, logits):
        """Mean cross-entropy of integer labels `y` and `logits`."""
        losses = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return ops.mean(losses)

    def _gradients(self, batch, variables):
        return backend.current().gradients(self, batch, variables)

    @staticmethod
    def _apply(optimizer, grads, variables, decay: float) -> None:
        if decay:
            grads = [g + decay * v.value for g, v in zip(grads, variables, strict=True)]
        optimizer.apply(grads, variables)


def _global_norm(tensors):
    return ops.sqrt(sum(ops.sum(ops.square(t)) for t in tensors))


def _shape(kind: str, shapes: dict) -> tuple[int, int]:
    if kind not in shapes:  # e.g. a DARTS net whose cells are all reductions
        raise ValueError(f"The supernet has no {kind} cell; use more cells.")
    return shapes[kind]
