"""Streaming data: fit, predict and evaluate on data read one batch at a time, never whole.

The estimators take, besides arrays and DataFrames:

- a `tf.data.Dataset` of (x, y) or (x, y, sample_weight), batched or not (for
  `predict`, x alone or pairs);
- a `keras.utils.PyDataset` of such batches (a finite one: `__len__`);
- image estimators: the path of a folder with one subfolder of images per class
  (`keras.utils.image_dataset_from_directory`'s layout);
- table estimators: the path of a CSV file, with `y` the name of its target column;
- a `Stream` (for example `ImageDirectory(path).split(0.2, seed)`).

One pass over the stream fits the preprocessing and the task head (`stats`,
`targets`); the validation split is a hash of each element's position and the
seed (`split`); trials and the refit read the parts again through bounded
`tf.data` pipelines (`pipeline`). Memory does not grow with the data. Streams
are read with `tf.data`, so TensorFlow must be installed (any Keras backend
trains on them).

Example:
    >>> clf = automl.ImageClassifier(max_trials=5)  # doctest: +SKIP
    >>> clf.fit("photos/")  # photos/cat/*.png, photos/dog/*.png  # doctest: +SKIP
    >>> automl.StructuredDataRegressor().fit("big.csv", y="price")  # doctest: +SKIP
"""

from __future__ import annotations

from automl.data.streaming.sources import (
    CsvFile,
    DatasetStream,
    ImageDirectory,
    PyDatasetStream,
    Stream,
)

__all__ = ["CsvFile", "DatasetStream", "ImageDirectory", "PyDatasetStream", "Stream"]
