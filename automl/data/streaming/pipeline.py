"""A part of a stream as what a model reads: a `tf.data` pipeline built batch by batch.

`StreamData` turns a stream's raw batches into model inputs and encoded targets
with the fitted `Preprocessor` and task head (the same `transform` / `encode` the
in-memory path uses), then `tf.data` rebatches them by the estimator's batch size,
shuffles within a bounded buffer (at most `SHUFFLE_ROWS` rows and `SHUFFLE_BYTES`
bytes) when training, and prefetches. Nothing holds more than the buffer, so memory
does not grow with the data. The search engine takes a part as the pair
`(data, data.targets)`, where it expects `(inputs, targets)`.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from automl.errors import InputError

SHUFFLE_ROWS = 10_000
SHUFFLE_BYTES = 64 * 2**20


class StreamTargets:
    """The targets of a `StreamData`: their number, and rows per class for "balanced"."""

    def __init__(self, data: StreamData):
        self.data = data

    def __len__(self) -> int:
        return int(self.data.rows or 0)

    @property
    def class_counts(self) -> np.ndarray | None:
        return self.data.class_counts


class StreamData:
    """Model inputs (and encoded targets, and sample weights) read from a stream.

    Args:
        stream: an `automl.data.streaming.Stream`.
        preprocessor: the fitted `Preprocessor` (its `transform` checks each batch).
        head: the task head (its `encode` makes the targets), or None for inputs alone.
        rows: the number of rows, when known (it sets the dataset's cardinality).
        class_counts: rows per class, for `class_weight="balanced"`.
        weights: whether the stream's sample weights are fed to training.
    """

    is_stream = True

    def __init__(
        self,
        stream,
        preprocessor,
        head=None,
        rows: int | None = None,
        class_counts=None,
        weights: bool = False,
    ):
        self.stream, self.preprocessor, self.head = stream, preprocessor, head
        self.rows, self.class_counts, self.weights = rows, class_counts, weights
        self.error: Exception | None = None

    @property
    def targets(self) -> StreamTargets:
        return StreamTargets(self)

    def pair(self) -> tuple:
        """(inputs, targets), as the search engine takes a part of the data."""
        return self, self.targets

    # ---------------------------------------------------------------- batches
    def model_batches(self, targets: bool = True):
        """Yield (inputs, targets[, weights]) per stream batch, or inputs alone.

        Raises:
            InputError: a batch does not have the form fit saw, or lacks targets.
        """
        specs = self._specs(targets)
        for x, y, w in self.stream.batches():
            if not len(x):
                continue
            inputs = _cast(self.preprocessor.transform(x), specs[0])
            if not targets:
                yield inputs
                continue
            if y is None:
                raise InputError(
                    f"{self.stream.what} yields inputs without targets; fit and evaluate need "
                    "targets: make it yield (x, y) pairs."
                )
            out = (inputs, _cast(self.head.encode(y), specs[1]))
            if self.weights:
                if w is None:
                    raise InputError(
                        f"{self.stream.what} yields sample weights in some batches only."
                    )
                out += (np.asarray(w, dtype="float32").reshape(-1),)
            yield out

    def sample_inputs(self, rows: int):
        """Model inputs of up to `rows` first rows (at least one).

        Raises:
            InputError: the stream is empty.
        """
        from automl.data.arrays import n_samples, take

        for inputs in self.model_batches(targets=False):
            count = min(rows, n_samples(inputs))
            return take(inputs, np.arange(count))
        raise InputError(f"{self.stream.what} is empty. Pass data with at least one sample.")

    # ---------------------------------------------------------------- tf.data
    def _specs(self, targets: bool) -> tuple:
        import tensorflow as tf

        pre = self.preprocessor
        if pre.kind == "columns":
            text = tf.string if pre.string_inputs else tf.int32
            inputs = {
                c["input"]: tf.TensorSpec((None, 1), tf.float32 if c["kind"] == "numeric" else text)
                for c in pre.columns
            }
        else:
            inputs = tf.TensorSpec((None, *pre.raw_shape), tf.float32)
        if not targets:
            return (inputs,)
        if self.head.target.task == "classification":
            target = tf.TensorSpec((None,), tf.int32)
        else:
            target = tf.TensorSpec((None, self.head.n_outputs), tf.float32)
        return (inputs, target) + ((tf.TensorSpec((None,), tf.float32),) if self.weights else ())

    def _row_bytes(self) -> int:
        pre = self.preprocessor
        if pre.kind == "columns":
            return 64 * len(pre.columns)
        return 4 * int(np.prod(pre.raw_shape))

    def dataset(self, batch_size: int, shuffle_seed: int | None = None, targets: bool = True):
        """A `tf.data.Dataset` of model batches; shuffled in a bounded buffer when
        `shuffle_seed` is given (reshuffled each epoch)."""
        import tensorflow as tf

        specs = self._specs(targets)
        signature = specs if targets else specs[0]

        def generate():
            try:
                yield from self.model_batches(targets)
            except Exception as err:  # kept, so that `errors()` can raise it as it was
                self.error = err
                raise

        data = tf.data.Dataset.from_generator(generate, output_signature=signature).unbatch()
        if shuffle_seed is not None:
            buffer = max(batch_size, min(SHUFFLE_ROWS, SHUFFLE_BYTES // self._row_bytes()))
            data = data.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size)
        if self.rows:
            steps = math.ceil(self.rows / batch_size)
            data = data.apply(tf.data.experimental.assert_cardinality(steps))
        return data.prefetch(tf.data.AUTOTUNE)

    @contextlib.contextmanager
    def errors(self):
        """Around `predict` / `evaluate`: raise a batch's `InputError` as it was, not wrapped
        in a TensorFlow error, and keep quiet Keras's warning that a stream of unknown
        length ran out of data (it always does, at its end)."""
        self.error = None
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Your input ran out of data")
                yield
        except Exception:
            if isinstance(self.error, InputError):
                raise self.error from None
            raise


def _cast(value, spec):
    """`value` (an array, or a dict of arrays) in the dtypes of `spec`."""
    if isinstance(value, dict):
        return {k: _cast(v, spec[k]) for k, v in value.items()}
    if spec.dtype.name == "string":
        return np.asarray(value, dtype=object)
    return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)


def fingerprint(stream, rows: int, split: str, batch_hashes: list) -> str:
    """A hash of a stream: its description, the hashes of its first batches, its rows and
    the split (for the project's signature)."""
    import hashlib

    digest = hashlib.sha256(f"{stream.describe()}|{rows}|{split}".encode())
    for value in batch_hashes:
        digest.update(value.encode())
    return digest.hexdigest()[:32]
