"""Task heads: what a task adds to an architecture, and how it scores a model.

A head owns everything that differs between classification and regression: the
target encoding (labels <-> what the model trains on), the activation of the
architecture's last layer, the layers after it, the loss and metrics, and the
objective a search ranks trials by. Search backends and the final-model step only
talk to a head, so they never branch on the task.

Example:
    >>> head = make_head("classification", y_train)  # doctest: +SKIP
    >>> head.objective, head.direction  # doctest: +SKIP
    ('val_accuracy', 'max')
"""

from __future__ import annotations

import numpy as np

from automl.data import TargetEncoder


class Head:
    """Base head. Subclasses set the class attributes and `output`."""

    task = ""
    activation = ""  # of the architecture's last layer
    loss = ""
    metric = ""  # the metric trained models report; the objective is "val_" + metric
    direction = ""  # "max" or "min"

    def __init__(self, target: TargetEncoder):
        self.target = target

    @classmethod
    def fit(cls, y) -> Head:
        """A head for targets `y` (fits the target encoding)."""
        return cls(TargetEncoder.fit(y, cls.task))

    @property
    def n_outputs(self) -> int:
        """Units of the architecture's last layer."""
        return self.target.n_outputs

    @property
    def objective(self) -> str:
        return f"val_{self.metric}"

    @property
    def sign(self) -> float:
        """+1 when higher scores are better, -1 when lower are."""
        return 1.0 if self.direction == "max" else -1.0

    def encode(self, y) -> np.ndarray:
        return self.target.encode(y)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        return self.target.decode(outputs)

    def output(self, x):
        """The layers after the architecture's last layer (none by default)."""
        return x

    def metrics(self) -> list:
        import keras

        if self.metric == "accuracy":
            return ["accuracy"]
        return [keras.metrics.MeanSquaredError(name=self.metric)]

    def compile(self, model, learning_rate: float = 1e-3) -> None:
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate), loss=self.loss, metrics=self.metrics()
        )


class ClassificationHead(Head):
    """Softmax over the classes, sparse cross-entropy, ranked by validation accuracy."""

    task = "classification"
    activation = "softmax"
    loss = "sparse_categorical_crossentropy"
    metric = "accuracy"
    direction = "max"


class RegressionHead(Head):
    """Linear outputs on standardised targets, scaled back inside the model; ranked by MSE."""

    task = "regression"
    activation = "linear"
    loss = "mse"
    metric = "mse"
    direction = "min"

    def output(self, x):
        import keras

        return keras.layers.Rescaling(
            scale=self.target.std, offset=self.target.mean, name="post_target_scale"
        )(x)


HEADS = {"classification": ClassificationHead, "regression": RegressionHead}
