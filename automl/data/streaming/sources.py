"""Streams: data read one batch at a time, never whole, and read again on every pass.

A `Stream` yields `(x, y, sample_weight)` batches of numpy arrays (a pandas
DataFrame for CSV chunks), `y` and the weights None where the source has none.
Every pass yields the same elements in the same order, which the deterministic
validation split (`automl.data.streaming.split`) relies on. The sources:

- `DatasetStream`: a `tf.data.Dataset` of x, (x, y) or (x, y, sample_weight),
  batched or not.
- `PyDatasetStream`: a finite `keras.utils.PyDataset` of such batches; its batches
  are read by index, so a split part reads only its own batches.
- `ImageDirectory`: a folder of images, one subfolder per class, read with
  `keras.utils.image_dataset_from_directory`; the classes are interleaved in a
  fixed random order, so a bounded shuffle buffer still mixes them.
- `CsvFile`: a CSV file read in chunks of rows with `pandas.read_csv(chunksize=...)`.
"""

from __future__ import annotations

import abc
import os

import numpy as np

from automl.data.streaming.images import IMAGE_FORMATS, first_image, read_shape, unreadable_images
from automl.data.streaming.split import held_out
from automl.errors import InputError

READ_ROWS = 256  # rows per batch read from tf.data and image folders
CSV_CHUNK_ROWS = 10_000  # rows per chunk read from a CSV file
ORDER_SEED = 1234  # the fixed order in which an image folder's classes are interleaved


class Stream(abc.ABC):
    """A re-iterable source of `(x, y, sample_weight)` batches.

    Attributes:
        unit: "element" (the validation split routes each row) or "batch" (each
            batch, for sources read by batch index).
        what: how messages name the source.
    """

    unit = "element"
    what = "the stream"

    @abc.abstractmethod
    def batches(self):
        """Yield `(x, y, sample_weight)` batches, the same ones in the same order on every call."""

    def describe(self) -> str:
        """What identifies the source (its kind, structure, size), for the data fingerprint."""
        return self.what

    def split(self, fraction: float, seed: int) -> tuple[Stream, Stream]:
        """(the rest, the held-out part): elements whose hash of (position, seed) falls
        under `fraction` are held out (see `automl.data.streaming.split`)."""
        return Subset(self, fraction, seed, held=False), Subset(self, fraction, seed, held=True)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.what}>"


def _take(x, rows):
    from automl.data.arrays import take

    return take(x, rows)


class Subset(Stream):
    """The held-out part of a stream (`held=True`), or the rest, by a hash of the position."""

    def __init__(self, parent: Stream, fraction: float, seed: int, held: bool):
        self.parent, self.fraction, self.seed, self.held = parent, float(fraction), seed, held
        self.unit = parent.unit
        part = "held-out" if held else "remaining"
        self.what = f"the {part} {fraction:g} of {parent.what} (seed {seed})"
        self._index = None

    def describe(self) -> str:
        return f"{self.parent.describe()} | {'held' if self.held else 'rest'} {self.fraction!r} {self.seed}"

    def _chosen(self) -> np.ndarray:
        if self._index is None:
            index = np.arange(len(self.parent))
            self._index = index[held_out(index, self.fraction, self.seed) == self.held]
        return self._index

    def __len__(self) -> int:
        return len(self._chosen())

    def batch(self, index: int):
        return self.parent.batch(int(self._chosen()[index]))

    def batches(self):
        if self.unit == "batch":
            for index in self._chosen():
                yield self.parent.batch(int(index))
            return
        start = 0
        for x, y, w in self.parent.batches():
            rows = len(x)
            keep = np.flatnonzero(
                held_out(np.arange(start, start + rows), self.fraction, self.seed) == self.held
            )
            start += rows
            if len(keep):
                yield (
                    _take(x, keep),
                    None if y is None else y[keep],
                    None if w is None else w[keep],
                )


def _unpack(element, what: str) -> tuple:
    """An element or batch as (x, y, sample_weight), y and weights None when absent."""
    if isinstance(element, (tuple, list)):
        if not 1 <= len(element) <= 3:
            raise InputError(
                f"{what} must yield x, (x, y) or (x, y, sample_weight). Received a tuple of "
                f"{len(element)} parts."
            )
        element = tuple(element) + (None,) * (3 - len(element))
    else:
        element = (element, None, None)
    x, y, w = element
    if isinstance(x, dict):
        raise InputError(
            f"{what} yields a dict of inputs; automl streams take an array of images or "
            "of table rows per batch. Stack the columns into one array, or write a CSV file."
        )
    if not hasattr(x, "columns"):
        x = np.asarray(x)
    return x, (None if y is None else np.asarray(y)), (None if w is None else np.asarray(w))


class DatasetStream(Stream):
    """A `tf.data.Dataset` of x, (x, y) or (x, y, sample_weight); unbatched ones are read
    `READ_ROWS` elements at a time.

    It must give the same elements in the same order on every pass (no
    `shuffle(reshuffle_each_iteration=True)` before it reaches automl).

    Raises:
        InputError: the elements are not tensors or tuples of tensors.
    """

    what = "the tf.data.Dataset"

    def __init__(self, dataset):
        spec = dataset.element_spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        if not 1 <= len(parts) <= 3 or not all(hasattr(p, "shape") for p in parts):
            raise InputError(
                "The tf.data.Dataset must yield (x, y) pairs of tensors, (x, y, sample_weight), "
                f"or tensors x alone. Received elements of structure {spec}. Map it to (x, y) "
                "pairs first."
            )
        if int(dataset.cardinality()) == -1:  # tf.data.INFINITE_CARDINALITY
            raise InputError(
                "The tf.data.Dataset is infinite (it repeats); automl reads it once per pass. "
                "Pass it without .repeat()."
            )
        first = parts[0].shape
        batched = first.rank not in (None, 0) and first[0] is None
        self.dataset = dataset if batched else dataset.batch(READ_ROWS)
        self.spec, self.has_targets = spec, len(parts) >= 2

    def describe(self) -> str:
        return f"tf.data {self.spec}"

    def batches(self):
        for element in self.dataset.as_numpy_iterator():
            yield _unpack(element, self.what)


class PyDatasetStream(Stream):
    """A finite `keras.utils.PyDataset` of x, (x, y) or (x, y, sample_weight) batches.

    Batch i must hold the same samples on every call; `on_epoch_end` is never called.

    Raises:
        InputError: the PyDataset has no length.
    """

    unit = "batch"
    what = "the PyDataset"

    def __init__(self, data):
        try:
            size = data.num_batches
        except NotImplementedError:
            size = None
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise InputError(
                f"A PyDataset passed to automl needs a finite number of batches (__len__ or "
                f"num_batches). Received: num_batches={size!r}."
            )
        self.data, self.size = data, int(size)

    def describe(self) -> str:
        return f"PyDataset {type(self.data).__name__} of {self.size} batches"

    def __len__(self) -> int:
        return self.size

    def batch(self, index: int):
        return _unpack(self.data[index], self.what)

    def batches(self):
        for index in range(self.size):
            yield self.batch(index)


class ImageDirectory(Stream):
    """A folder of images in the layout `keras.utils.image_dataset_from_directory` reads.

    With `labels=True` (fit, evaluate) it needs one subfolder per class, and yields
    (images, class names); the classes are interleaved in a fixed random order
    (each class in its files' sorted order). With `labels=False` (predict) it yields
    the images alone, in sorted order of their paths, subfolders included.
    Images are float32 (H, W, C) in 0..255; their size and colour mode are those of
    `image_shape`, or else of the first image (sorted by name): grayscale, RGB or
    RGBA. Images of another size are resized (bilinear), as Keras does.

    An image that cannot be read or decoded fails the pass that reaches it (the
    first, which fits the statistics) with an InputError that names the file: when
    the pipeline fails, every file is decoded once to find the culprits.

    Raises:
        InputError: the folder does not exist, has no class subfolders (with
            labels), or has no images.
    """

    def __init__(self, path, labels: bool = True, image_shape: list | None = None):
        self.path, self.labels = os.fspath(path), labels
        self.what = f"the image folder {self.path!r}"
        if not os.path.isdir(self.path):
            raise InputError(
                f"No such image folder: {self.path!r}. Pass a folder with one subfolder of "
                "images per class (the layout keras.utils.image_dataset_from_directory reads)."
            )
        self.class_names = sorted(
            e.name for e in os.scandir(self.path) if e.is_dir() and not e.name.startswith(".")
        )
        if labels and not self.class_names:
            raise InputError(
                f"{self.what} has no class subfolders. Put the images of each class in a "
                "subfolder named after the class, e.g. DIR/cat/1.png, DIR/dog/2.png."
            )
        folders = [os.path.join(self.path, c) for c in self.class_names] + [self.path]
        first = first_image(folders)
        if first is None:
            raise InputError(
                f"{self.what} holds no images ({', '.join(IMAGE_FORMATS)}) in its class "
                f"subfolders {self.class_names[:5]}. Add images, or check the path."
            )
        self.image_shape = list(image_shape or read_shape(first))
        self.dataset, self.count = self._dataset()

    def _read(self, folder: str, labels):
        import keras

        height, width, channels = self.image_shape[0], self.image_shape[1], self.channels
        mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[channels]
        try:
            return keras.utils.image_dataset_from_directory(
                folder,
                labels=labels,
                color_mode=mode,
                batch_size=None,
                image_size=(height, width),
                shuffle=False,
                verbose=False,
            )
        except ValueError as err:
            if str(err).startswith("No images found"):
                return None  # an empty class subfolder: no class
            raise InputError(f"Cannot read {self.what} as images: {err}") from None

    @property
    def channels(self) -> int:
        return self.image_shape[2] if len(self.image_shape) == 3 else 1

    def _dataset(self):
        import tensorflow as tf

        if not self.labels:
            data = self._read(self.path, None)
            self.files = list(data.file_paths)
            return data.batch(READ_ROWS), len(data.file_paths)
        parts, counts, self.files = [], [], []
        for index, name in enumerate(self.class_names):
            images = self._read(os.path.join(self.path, name), None)
            if images is None:
                continue
            counts.append(len(images.file_paths))
            self.files += images.file_paths
            label = tf.data.Dataset.from_tensors(np.int32(index)).repeat()
            parts.append(tf.data.Dataset.zip((images, label)))
        if not parts:
            raise InputError(f"{self.what} holds no images in its class subfolders.")
        weights = (np.asarray(counts) / sum(counts)).tolist()
        mixed = tf.data.Dataset.sample_from_datasets(
            parts, weights, seed=ORDER_SEED, rerandomize_each_iteration=False
        )
        return mixed.batch(READ_ROWS), sum(counts)

    def describe(self) -> str:
        return (
            f"image folder {self.image_shape} {self.count} files, classes "
            f"{self.class_names if self.labels else None}"
        )

    def batches(self):
        """Yield (images, class names or None, None) batches.

        Raises:
            InputError: an image file cannot be read or decoded (it is named).
        """
        import tensorflow as tf

        names = np.asarray(self.class_names, dtype=object)
        flat = len(self.image_shape) == 2  # fit on (samples, H, W) arrays: no channel axis
        try:
            for element in self.dataset.as_numpy_iterator():
                images = element[0] if self.labels else element
                images = images[..., 0] if flat else images
                yield images, (names[element[1]] if self.labels else None), None
        except tf.errors.OpError:
            bad = unreadable_images(self.files, self.channels)
            if not bad:
                raise  # not a file's fault
            path, reason = bad[0]
            more = f" ({len(bad) - 1} more unreadable files)" if len(bad) > 1 else ""
            raise InputError(
                f"Cannot read the image file {path!r}: {reason}{more}. Remove or replace it; "
                f"{self.what} must hold only readable {', '.join(IMAGE_FORMATS)} images."
            ) from None


class CsvFile(Stream):
    """A CSV file read in chunks of `CSV_CHUNK_ROWS` rows; `target` names the y column.

    Rows whose target is missing are skipped (as `automl fit --csv` does). Without
    a target it yields the features alone, less the column `drop` when present
    (the target column of fit, in a file given to predict).

    Raises:
        InputError: the file is missing or unreadable, has no such target column, or
            has no feature column.
    """

    def __init__(self, path, target: str | None = None, drop: str | None = None):
        import pandas as pd

        self.path, self.target, self.drop = os.fspath(path), target, drop
        self.what = f"the CSV file {self.path!r}"
        if not os.path.isfile(self.path):
            raise InputError(f"No such CSV file: {self.path!r}. Check the path.")
        try:
            columns = list(pd.read_csv(self.path, nrows=0).columns)
        except (
            OSError,
            UnicodeDecodeError,
            pd.errors.ParserError,
            pd.errors.EmptyDataError,
        ) as err:
            raise InputError(f"Cannot read {self.path!r} as a CSV file: {err}") from None
        if target is not None and target not in columns:
            raise InputError(
                f"Column {target!r} is not in {self.path}. Columns: {columns}. Pass the name of "
                "the target column as y."
            )
        self.columns = [c for c in columns if c not in (target, drop)]
        if not self.columns:
            raise InputError(f"{self.path} has no feature columns besides {target or drop!r}.")

    def describe(self) -> str:
        return f"CSV {os.path.getsize(self.path)} bytes, columns {self.columns}, target {self.target!r}"

    def batches(self):
        """Yield (features, targets or None, None) chunks.

        Raises:
            InputError: the file cannot be parsed, or it has rows but none with a target.
        """
        import pandas as pd

        rows = kept = 0
        try:
            with pd.read_csv(self.path, chunksize=CSV_CHUNK_ROWS) as reader:
                for chunk in reader:
                    if self.target is None:
                        yield chunk[self.columns], None, None
                        continue
                    rows += len(chunk)
                    chunk = chunk[chunk[self.target].notna()]
                    kept += len(chunk)
                    if len(chunk):
                        yield chunk[self.columns], chunk[self.target].to_numpy(), None
        except (UnicodeDecodeError, pd.errors.ParserError) as err:
            raise InputError(f"Cannot read {self.path!r} as a CSV file: {err}") from None
        if rows and not kept:
            raise InputError(empty_target(self.target, self.path, rows))


def empty_target(target: str, path: str, rows: int) -> str:
    """The message for a CSV file whose target column is empty in each of its `rows` rows."""
    return (
        f"Column {target!r} has no values: it is empty in all {rows} rows of {path}. "
        "Fill in the target, or name the column that holds it."
    )
