"""Task heads: what a task adds to an architecture, and how it scores a model.

A head owns everything that differs between classification and regression: the
target encoding (`TargetEncoder`: labels <-> what the model trains on), the activation of the
architecture's last layer, the layers after it, the loss and metrics, and the
objective a search ranks trials by. Search backends and the final-model step only
talk to a head, so they never branch on the task.

Example:
    >>> head = make_head("classification", y_train)  # doctest: +SKIP
    >>> head.objective, head.direction  # doctest: +SKIP
    ('val_accuracy', 'max')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from automl.data.arrays import check_targets
from automl.errors import InputError

MAX_TARGET = 1e18  # larger regression targets overflow float32 squared errors


@dataclass
class TargetEncoder:
    """Labels in the user's space <-> what the model trains on."""

    task: str  # "classification" or "regression"
    classes: list = field(default_factory=list)
    one_hot: bool = False
    mean: list = field(default_factory=list)
    std: list = field(default_factory=list)

    @classmethod
    def fit(cls, y, task: str) -> TargetEncoder:
        """The encoding of targets `y` for `task` ("classification" or "regression").

        Raises:
            InputError: the targets cannot be used for the task.
        """
        y = check_targets(y)
        if y.ndim > 2:
            raise InputError(
                "Targets must be one value per sample (1-D) or one row per sample (2-D). "
                f"Received: y.shape={y.shape}."
            )
        if task == "classification":
            return cls._fit_classes(y)
        try:
            y = y.astype("float64").reshape(len(y), -1)
        except (TypeError, ValueError):
            example = y.reshape(-1).tolist()[0]
            raise InputError(
                f"Regression targets must be numbers. Received: dtype={y.dtype}, for example "
                f"{example!r}. Use a classifier for labels."
            ) from None
        if not np.isfinite(y).all():
            raise InputError("Regression targets must be finite numbers. Found NaN or inf in y.")
        largest = float(np.abs(y).max())
        if largest > MAX_TARGET:
            raise InputError(
                f"Regression targets reach {largest:.3g}: squared errors that large overflow "
                f"32-bit floats (the limit is {MAX_TARGET:.0e}). Divide y by a power of ten, "
                "for example y / 1e12, and multiply the predictions back."
            )
        std = y.std(axis=0)
        return cls(task, mean=y.mean(axis=0).tolist(), std=np.where(std > 0, std, 1).tolist())

    @classmethod
    def _fit_classes(cls, y: np.ndarray) -> TargetEncoder:
        if y.ndim == 2 and y.shape[1] > 1:
            if not np.isin(y, (0, 1)).all() or not (y.sum(axis=1) == 1).all():
                raise InputError(
                    "2-D classification labels must be one-hot (one 1 per row). "
                    f"Received: y.shape={y.shape} with other values."
                )
            return cls("classification", list(range(y.shape[1])), one_hot=True)
        y = y.reshape(-1)
        try:
            classes = np.unique(y)
        except TypeError:
            kinds = sorted({type(v).__name__ for v in y.tolist()})
            raise InputError(
                f"The labels mix types ({', '.join(kinds)}). Give every label the same type, "
                "for example y.astype(str)."
            ) from None
        if len(classes) < 2:
            raise InputError(
                f"Classification needs at least 2 classes. Received: {len(classes)} class "
                f"({classes.tolist()}). Use a regressor for continuous targets."
            )
        return cls("classification", classes.tolist())

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else len(self.mean)

    def encode(self, y) -> np.ndarray:
        """Targets in the user's space -> what the model trains on.

        Raises:
            InputError: y is missing, has missing values, or holds an unseen label.
        """
        if y is None:
            raise InputError("Targets are needed here: pass y, or a dataset of (x, y) pairs.")
        y = check_targets(y)
        if self.task == "regression":
            try:
                y = y.astype("float32").reshape(len(y), -1)
            except (TypeError, ValueError):
                raise InputError(
                    f"Regression targets must be numbers. Received: dtype={y.dtype}."
                ) from None
            if y.shape[1] != len(self.mean):
                raise InputError(
                    f"Expected {len(self.mean)} target value(s) per sample as in fit. "
                    f"Received: y.shape={y.shape}."
                )
            return y
        width = y.shape[1] if y.ndim == 2 else 1
        if self.one_hot:
            if y.ndim != 2 or width != len(self.classes):
                raise InputError(
                    f"fit saw one-hot labels of {len(self.classes)} classes; pass labels of "
                    f"that form here too. Received: y.shape={y.shape}."
                )
            return y.argmax(axis=1).astype("int32")
        if y.ndim > 2 or width > 1:
            raise InputError(
                f"fit saw one label per sample; pass labels of that form here too. "
                f"Received: y.shape={y.shape}."
            )
        index = {c: i for i, c in enumerate(self.classes)}
        try:
            return np.array([index[v] for v in y.reshape(-1).tolist()], dtype="int32")
        except KeyError as err:
            raise InputError(
                f"Label {err.args[0]!r} was not seen during fit. Known classes: {self.classes}."
            ) from None

    def decode(self, probabilities: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            return probabilities if probabilities.shape[1] > 1 else probabilities[:, 0]
        index = probabilities.argmax(axis=1)
        if self.one_hot:
            return np.eye(len(self.classes), dtype="int64")[index]
        return np.asarray(self.classes)[index]


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
