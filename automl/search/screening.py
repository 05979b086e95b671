"""Training-free screening of architectures: the NASWOT score.

NASWOT ("Neural Architecture Search without Training", Mellor et al., 2021)
rates an untrained network by how differently its ReLUs respond to the inputs
of one minibatch. Every input i gets a binary code c_i: one bit per ReLU unit
(all ReLU layers, every spatial position and channel), 1 where the unit is
active (its output is > 0). With N_A units in all, the N x N kernel

    K[i, j] = N_A - hamming(c_i, c_j)

counts the units on which inputs i and j agree, and the score is log |det K|.
A network that maps different inputs to different activation patterns (more
linear regions separating the batch) has a better-conditioned K and a higher
score; the paper found that higher scores go with higher trained accuracy on
NAS-Bench-201. K is a sum of two Gram matrices (of the codes and of their
complements), so it is positive semi-definite: the score is -inf exactly when
two inputs share a code, or more generally when the codes of the batch cannot
tell its inputs apart.

Cost: one forward pass of one batch through the untrained network, plus an
N x N_A by N_A x N matrix product and an N x N determinant. Building the Keras
model often costs more than scoring it (`score_graphs` times both); both are
small next to training.

Batch size: use N = 32 to 128 inputs from the training set, the same batch for
every candidate you compare. Scores of different N are not comparable (log det
grows with N); with N much larger than the number of distinct codes that a
small network can produce, K becomes singular and everything scores -inf.

Uses `keras.ops` and numpy only, so it runs on every Keras backend.

Example:
    >>> from automl.graph.seeds import small_cnn
    >>> from automl.search.screening import score_graphs
    >>> graphs = [small_cnn((8, 8, 1), 10, width=w) for w in (8, 16)]
    >>> scores = score_graphs(graphs, x_train[:64])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

logger = logging.getLogger(__name__)


def _is_relu(operation) -> bool:
    """Whether the output of a model operation is a ReLU's output (> 0 exactly where active).

    Counted: `keras.layers.ReLU` without a negative slope, any layer whose
    `activation` is relu (`Activation("relu")`, `Dense(..., activation="relu")`,
    `Conv2D(..., activation="relu")`: for those the output is > 0 exactly where
    the pre-activation is, so the output gives the same code), and bare
    `keras.ops.relu` calls in a functional model.
    """
    import keras

    if isinstance(operation, keras.layers.ReLU):
        return not getattr(operation, "negative_slope", 0.0)
    activation = getattr(operation, "activation", None)
    if activation is not None and getattr(activation, "__name__", None) == "relu":
        return True
    return not isinstance(operation, keras.layers.Layer) and type(operation).__name__ == "Relu"


def relu_outputs(model) -> list:
    """The symbolic outputs of the model's ReLUs (see `_is_relu`), in the model's order.

    Only the model's own operations are searched: ReLUs inside a nested model
    used as a layer are not seen. A layer called more than once counts its
    first call.
    """
    operations = getattr(model, "operations", None) or model.layers
    return [operation.output for operation in operations if _is_relu(operation)]


def kernel_from_codes(codes) -> np.ndarray:
    """The NASWOT kernel of binary codes: K[i, j] = N_A - hamming(codes[i], codes[j]).

    Args:
        codes: an (N, N_A) array of 0/1 (or booleans), one row per input.

    Returns:
        The (N, N) float64 kernel; its diagonal is N_A.
    """
    c = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    # agreements on active units plus agreements on inactive units; exact in float64
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def log_det(kernel) -> float:
    """log |det K| by `slogdet`, or -inf when K is singular (sign 0)."""
    sign, logabsdet = np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))
    return float("-inf") if sign == 0 else float(logabsdet)


def naswot_kernel(model, inputs, training: bool = False) -> tuple[np.ndarray, int]:
    """The NASWOT kernel of `model` on the batch `inputs`, and N_A (the number of ReLU units).

    One forward pass of a feature model that returns every ReLU's output; the
    kernel is accumulated layer by layer, so the codes of all layers are never
    held at once.

    Raises:
        ValueError: if the model has no ReLU whose output can be read.
    """
    import keras

    outputs = relu_outputs(model)
    if not outputs:
        raise ValueError(
            "The model has no ReLU to score: NASWOT needs keras.layers.ReLU layers or "
            "layers with a relu activation in the model itself."
        )
    try:
        model_input = model.input  # the structure the model was built with
    except AttributeError:  # a Sequential model that was never called
        model_input = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    features = keras.Model(model_input, outputs)
    values = features(inputs, training=training)
    if not isinstance(values, (list, tuple)):
        values = [values]
    n = None
    kernel = None
    units = 0
    for value in values:
        codes = keras.ops.convert_to_numpy(keras.ops.greater(value, 0))
        n = len(codes)
        codes = codes.reshape(n, -1)
        units += codes.shape[1]
        part = kernel_from_codes(codes)
        kernel = part if kernel is None else kernel + part
    return kernel, units


def naswot_score(model, inputs, training: bool = False) -> float:
    """The NASWOT score of an untrained model on one batch: log |det K_H|.

    For each input i of the batch, c_i holds one bit per ReLU unit of the model
    (1 where the unit's output is > 0), over every ReLU of the model (see
    `relu_outputs`). K_H[i, j] = N_A - hamming(c_i, c_j), N_A the number of
    ReLU units, and the score is `slogdet(K_H)`'s log |det|; -inf when K_H is
    singular (two inputs with the same code, for example). Higher is better:
    inputs that the network tells apart at initialisation.

    It costs one forward pass of the batch (no gradients, no training).

    Args:
        model: a functional Keras model, for example from
            `automl.graph.builder.build_model`, at its initial weights.
        inputs: one batch of N training inputs, N = 32 to 128; compare only
            models scored on the same batch.
        training: the flag the forward pass runs with. False (the default)
            makes the score deterministic: BatchNormalization uses its moving
            statistics (an identity at initialisation) and dropout is off; True
            uses the batch's statistics and random dropout masks.

    Returns:
        The score, a float (-inf if K_H is singular).
    """
    kernel, _ = naswot_kernel(model, inputs, training=training)
    return log_det(kernel)


def score_graphs(
    graphs: Sequence,
    inputs,
    seed: int = 0,
    build: Callable | None = None,
    times: list | None = None,
) -> list[float]:
    """The NASWOT score of each graph, built fresh with the same random seed.

    Before each build `keras.utils.set_random_seed(seed)` is called, so a graph
    scores the same every time; after each score the Keras session is cleared,
    so the layers of earlier candidates do not pile up.

    Args:
        graphs: `ArchitectureGraph`s (or whatever `build` takes).
        inputs: one batch of N = 32 to 128 training inputs, the same for all.
        seed: the seed of every initialisation.
        build: graph -> Keras model; `automl.graph.builder.build_model` if None.
        times: if a list, one dict per graph is appended to it:
            `{"build_s": seconds to build, "score_s": seconds to score}`.
            The times are also logged at DEBUG level.

    Returns:
        The scores, in the order of `graphs`.
    """
    import keras

    if build is None:
        from automl.graph.builder import build_model as build
    scores = []
    for index, graph in enumerate(graphs):
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        model = build(graph)
        built = time.perf_counter()
        scores.append(naswot_score(model, inputs))
        scored = time.perf_counter()
        del model
        keras.backend.clear_session(free_memory=False)
        build_s, score_s = built - start, scored - built
        if times is not None:
            times.append({"build_s": build_s, "score_s": score_s})
        logger.debug(
            "graph %d: NASWOT %.3f, build %.3f s, score %.1f ms",
            index,
            scores[-1],
            build_s,
            1000 * score_s,
        )
    return scores


class GraphScreener:
    """NASWOT scores of graphs on one fixed batch, for a search space's `screen`.

    Each graph is built with `build` (the task's preprocessing and head included, so
    `inputs` are raw inputs) from the same seed and scored once; scores are kept by
    graph key, so a candidate seen again costs nothing. `seconds` adds up the time
    spent building and scoring.

    Args:
        build: graph -> Keras model.
        inputs: one batch of N = 32 to 128 training inputs.
        seed: the seed of every initialisation.
    """

    def __init__(self, build: Callable, inputs, seed: int = 0):
        self.build = build
        self.inputs = inputs
        self.seed = seed
        self.scores: dict[str, float] = {}
        self.seconds = 0.0

    def __call__(self, graphs: Sequence) -> list[float]:
        new = {g.key(): g for g in graphs if g.key() not in self.scores}
        if new:
            start = time.perf_counter()
            values = score_graphs(list(new.values()), self.inputs, self.seed, self.build)
            self.scores.update(zip(new, values))
            self.seconds += time.perf_counter() - start
        return [self.scores[g.key()] for g in graphs]
