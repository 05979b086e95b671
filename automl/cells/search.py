"""MiLeNAS / DARTS search on image arrays, and the fixed networks built from its genotypes.

`run_search` splits the data 50/50 into search-train and search-val halves, trains
a `SuperNet` with the chosen method, and after every epoch records the derived
genotype, its model size (n, r) and the supernet's search-validation accuracy
(model-size-based search), stopping early by the MiLeNAS rule. `build_network`
applies a fixed network of `Cell`s to a Keras tensor; `train_network` builds,
compiles and trains one.

Example:
    >>> result = run_search(x, y, num_classes=10, epochs=5, cells=5, channels=8)  # doctest: +SKIP
    >>> inputs = keras.Input(x.shape[1:])  # doctest: +SKIP
    >>> model = keras.Model(inputs, build_network(result.genotype, inputs, 10))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
from sklearn.model_selection import train_test_split

from automl.cells.genotype import Genotype, ModelSizeRecord, reached_early_stop
from automl.cells.layers import Cell, ResidualReduction
from automl.cells.ops import batch_norm
from automl.cells.supernet import (
    METHODS,
    SuperNet,
    default_alpha_optimizer,
    default_weight_optimizer,
)
from automl.data import arrays as data_mod
from automl.errors import InputError
from automl.training.fit import StopAtDeadline

METHOD_ALIASES = {"darts": "darts2"}


@dataclass
class SearchResult:
    """What a search found.

    Attributes:
        genotype: the chosen genotype (the last one if the search stopped early, else
            the one of the epoch with the best search-validation accuracy).
        by_size: per model size (n, r), the best genotype by search-validation accuracy:
            dicts with "model_size", "genotype", "accuracy", "epoch".
        history: one dict per epoch: "epoch", "seconds", "loss", "accuracy",
            "search_val_accuracy", "genotype", "model_size".
        method: the search method that ran.
        stopped_early: whether the (6, 0) rule ended the search.
    """

    genotype: Genotype
    by_size: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    method: str = "milenas"
    stopped_early: bool = False

    @property
    def genotypes(self) -> dict[tuple[int, int], Genotype]:
        """The best genotype of every model size seen."""
        return {tuple(e["model_size"]): Genotype.from_string(e["genotype"]) for e in self.by_size}

    def to_dict(self) -> dict:
        """A JSON-friendly dict."""
        return {
            "genotype": str(self.genotype),
            "by_size": self.by_size,
            "history": self.history,
            "method": self.method,
            "stopped_early": self.stopped_early,
        }


def _check_images(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype="float32")
    y = np.asarray(y)
    if x.ndim != 4:
        raise InputError(f"Images must be (samples, height, width, channels). Received: {x.shape=}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(
            "Labels must be one integer per image. "
            f"Received: y.shape={y.shape}, y.dtype={y.dtype} for {len(x)} images."
        )
    return x, y.astype("int32")


def _split(x, y, seed: int):
    """Search-train and search-val halves, stratified when every class has 2 samples."""
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=stratify)
    return (x_a, y_a), (x_b, y_b)


def _batches(x, y, batch_size: int, seed: int, shuffle: bool = True):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=shuffle)


class PairedBatches(keras.utils.PyDataset):
    """`((x_train, y_train), (x_val, y_val))` batches for backends without tf.data.

    Both halves are reshuffled every epoch; an epoch is one pass over the train half
    in full batches, and the val half cycles, as the tf.data pipeline does.
    """

    def __init__(self, train, val, batch_size: int, seed: int):
        super().__init__()
        self.halves, self.batch_size = (train, val), batch_size
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return len(self.halves[0][1]) // self.batch_size

    def on_epoch_end(self) -> None:
        self.orders = [self.rng.permutation(len(y)) for _, y in self.halves]

    def __getitem__(self, index: int):
        out = []
        for (x, y), order in zip(self.halves, self.orders, strict=True):
            start = index % (len(order) // self.batch_size) * self.batch_size
            rows = order[start : start + self.batch_size]
            out.append((x[rows], y[rows]))
        return tuple(out)


def _pipelines(train, val, batch_size: int, seed: int):
    """(search pairs, val batches for evaluation): tf.data on TensorFlow, else PyDatasets."""
    if keras.backend.backend() != "tensorflow":
        return PairedBatches(train, val, batch_size, seed), data_mod.as_dataset(*val, batch_size)
    import tensorflow as tf

    pairs = tf.data.Dataset.zip(
        (_batches(*train, batch_size, seed), _batches(*val, batch_size, seed + 1).repeat())
    ).prefetch(2)
    return pairs, _batches(*val, batch_size, seed, shuffle=False)


def run_search(
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    method: str = "milenas",
    epochs: int = 50,
    batch_size: int = 64,
    cells: int = 8,
    channels: int = 16,
    seed: int = 0,
    verbose: int = 0,
    space: str = "darts",
    stages: int = 3,
    lambda_: float = 1.0,
    alpha_lr: float = 3e-4,
    early_stop: bool = True,
    jit_compile: bool = False,
    callbacks: list | None = None,
    deadline: float | None = None,
) -> SearchResult:
    """Search a cell with MiLeNAS or DARTS.

    Args:
        x: float32 images (samples, height, width, channels), already normalised.
        y: integer labels in [0, num_classes).
        num_classes: number of classes.
        method: "milenas", "darts1", "darts2" ("darts" means "darts2").
        epochs: maximum search epochs (MiLeNAS: 50).
        batch_size: per half (MiLeNAS: 64); capped at the size of a half.
        cells: supernet cells (DARTS, at least 3) or cells per stage (NB201).
        channels: supernet channels of the first cells.
        seed: seeds the split, the shuffling and the initialisation.
        verbose: 1 prints one line per epoch.
        space: "darts" or "nb201".
        stages: NB201 only; supernet stages (fewer for tiny images).
        lambda_: MiLeNAS's weight of the validation gradient.
        alpha_lr: Adam learning rate of the alphas (MiLeNAS: 3e-4 over ~20,000 steps;
            searches of a few hundred steps need a larger one for the alphas to move).
        early_stop: stop when the model size reaches (6, 0) (DARTS space only).
        jit_compile: compile the train step with XLA (always, on JAX).
        callbacks: Keras callbacks for the supernet's `fit` (called one epoch at a time).
        deadline: a `time.time()` value; the search stops at the first batch past it (the
            epoch it stops in is still evaluated, so at least one genotype is derived).

    Returns:
        A `SearchResult`.

    Raises:
        InputError: if the data or the method cannot be used.
    """
    method = METHOD_ALIASES.get(method, method)
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS} or 'darts'. Received: {method=}")
    if space not in ("darts", "nb201"):
        raise InputError(f"space must be 'darts' or 'nb201'. Received: {space=}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise InputError(f"epochs must be a positive integer. Received: {epochs=}")
    x, y = _check_images(x, y)
    if len(x) < 4 or y.min() < 0 or y.max() >= num_classes:
        raise InputError(
            f"Need at least 4 images with labels in [0, {num_classes}). "
            f"Received: {len(x)} images, labels in [{y.min()}, {y.max()}]."
        )
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_val, y_val) = _split(x, y, seed)
    batch_size = min(batch_size, len(x_train), len(x_val))
    pairs, val_eval = _pipelines((x_train, y_train), (x_val, y_val), batch_size, seed)
    net = SuperNet(num_classes, x.shape[1:], space, cells, channels, stages=stages, seed=seed)
    steps = len(x_train) // batch_size
    net.compile(
        default_weight_optimizer(epochs * steps),
        default_alpha_optimizer(alpha_lr),
        method=method,
        lambda_=lambda_,
        jit_compile=jit_compile or keras.backend.backend() == "jax",
    )
    record, history, stopped = ModelSizeRecord(), [], False
    timer = StopAtDeadline(deadline)
    for epoch in range(epochs):
        start = time.perf_counter()
        logs = net.fit(
            pairs, epochs=1, verbose=0, shuffle=False, callbacks=[*(callbacks or []), timer]
        ).history
        seconds = time.perf_counter() - start
        evaluation = net.evaluate(val_eval, verbose=0, return_dict=True)
        genotype = net.genotype()
        entry = {
            "epoch": epoch,
            "seconds": seconds,
            "loss": float(logs["loss"][-1]),
            "accuracy": float(logs["accuracy"][-1]),
            "search_val_accuracy": float(evaluation["accuracy"]),
            "genotype": str(genotype),
            "model_size": list(genotype.model_size),
        }
        history.append(entry)
        record.update(genotype, entry["search_val_accuracy"], epoch)
        if verbose:
            _print_epoch(method, epochs, entry)
        if early_stop and space == "darts" and reached_early_stop(genotype.model_size):
            stopped = True
            break
        if timer.stopped:
            break
    chosen = history[-1] if stopped else max(history, key=lambda e: e["search_val_accuracy"])
    return SearchResult(
        Genotype.from_string(chosen["genotype"]), record.to_list(), history, method, stopped
    )


def _print_epoch(method: str, epochs: int, entry: dict) -> None:
    size = tuple(entry["model_size"])
    print(
        f"[{method}] epoch {entry['epoch'] + 1}/{epochs} {entry['seconds']:.1f}s "
        f"loss {entry['loss']:.3f} acc {entry['accuracy']:.3f} "
        f"search-val acc {entry['search_val_accuracy']:.3f} size {size}",
        flush=True,
    )


def build_network(
    genotype: Genotype | str,
    x: keras.KerasTensor,
    num_classes: int,
    cells: int = 8,
    channels: int = 16,
    stem_multiplier: int = 3,
    prefix: str = "",
) -> keras.KerasTensor:
    """Apply a fixed network of `Cell`s to `x`, ending in a softmax `Dense`.

    DARTS genotypes: a 3x3 stem conv + BN, `cells` cells with reduction cells at
    cells//3 and 2*cells//3 (channels doubled), global pooling. NB201 genotypes:
    3 stages of `cells` cells with residual reductions between, BN, ReLU, pooling.

    Args:
        genotype: a `Genotype` or its string.
        x: the Keras tensor to build on (images, NHWC).
        num_classes: softmax units.
        cells: cells (DARTS) or cells per stage (NB201).
        channels: channels of the first cells.
        stem_multiplier: DARTS stem width = stem_multiplier * channels.
        prefix: put before every layer name (to build several networks in one model).

    Returns:
        The class-probability tensor.
    """
    if isinstance(genotype, str):
        genotype = Genotype.from_string(genotype)
    darts = genotype.space == "darts"
    width = channels * (stem_multiplier if darts else 1)
    s = keras.layers.ZeroPadding2D(1, name=f"{prefix}stem_pad")(x)
    s = keras.layers.Conv2D(width, 3, use_bias=False, name=f"{prefix}stem_conv")(s)
    s = batch_norm(name=f"{prefix}stem_bn")(s)
    if darts:
        states, reduction_prev = [s, s], False
        for index in range(cells):
            reduction = index in (cells // 3, 2 * cells // 3)
            channels = channels * 2 if reduction else channels
            kind = "reduction" if reduction else "normal"
            spec = genotype.reduction if reduction else genotype.normal
            cell = Cell(
                _cell_string(spec), kind, channels, reduction_prev, name=f"{prefix}cell_{index}"
            )
            states = [states[1], cell(states)]
            reduction_prev = reduction
        s = states[1]
    else:
        for stage in range(3):
            if stage:
                s = ResidualReduction(channels * 2**stage, name=f"{prefix}reduction_{stage}")(s)
            for index in range(cells):
                cell = Cell(
                    _cell_string(genotype.normal),
                    "nb201",
                    channels * 2**stage,
                    name=f"{prefix}cell_{stage}_{index}",
                )
                s = cell(s)
        s = keras.layers.ReLU(name=f"{prefix}head_relu")(batch_norm(name=f"{prefix}head_bn")(s))
    s = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(s)
    return keras.layers.Dense(num_classes, activation="softmax", name=f"{prefix}classifier")(s)


def _cell_string(spec) -> str:
    return Genotype(spec).to_string()


def train_network(
    genotype: Genotype | str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    epochs: int = 20,
    batch_size: int = 64,
    cells: int = 8,
    channels: int = 16,
    seed: int = 0,
    verbose: int = 0,
) -> keras.Model:
    """Build and train a fixed network from a genotype (SGD, lr 0.025 cosine, momentum 0.9).

    Args:
        genotype: a `Genotype` or its string.
        x: float32 images, already normalised.
        y: integer labels.
        num_classes: number of classes.
        epochs: training epochs.
        batch_size: batch size.
        cells: cells (DARTS) or cells per stage (NB201).
        channels: channels of the first cells.
        seed: seeds initialisation and shuffling.
        verbose: passed to `fit`.

    Returns:
        The trained `keras.Model` (softmax outputs).
    """
    x, y = _check_images(x, y)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(x.shape[1:], name="images")
    model = keras.Model(inputs, build_network(genotype, inputs, num_classes, cells, channels))
    batch_size = min(batch_size, len(x))
    steps = max(epochs * (len(x) // batch_size), 1)
    schedule = keras.optimizers.schedules.CosineDecay(0.025, steps, alpha=0.0)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=3e-4, global_clipnorm=5.0)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(_batches(x, y, batch_size, seed), epochs=epochs, verbose=verbose, shuffle=False)
    return model
