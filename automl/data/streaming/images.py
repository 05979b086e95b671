"""Image files of a folder: the first one, its shape and the files that cannot be decoded.

`automl.data.streaming.sources.ImageDirectory` reads a folder with Keras; these
helpers find what it needs before (the first image's shape) and, when its pipeline
fails, which files are to blame, so that the error names them.
"""

from __future__ import annotations

import os
import re

from automl.errors import InputError

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras reads


def first_image(folders: list[str]) -> str | None:
    """The first image file (by sorted path) under the first folder that has one."""
    for folder in folders:
        for path, subfolders, names in os.walk(folder):
            subfolders.sort()
            images = sorted(n for n in names if n.lower().endswith(IMAGE_FORMATS))
            if images:
                return os.path.join(path, images[0])
    return None


def read_shape(path: str) -> list:
    """(H, W, C) of one image file, C in 1, 3, 4 (grayscale with alpha counts as RGBA).

    Raises:
        InputError: the file cannot be decoded as an image.
    """
    import tensorflow as tf

    try:
        shape = tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape
    except (tf.errors.OpError, ValueError) as err:
        raise InputError(f"Cannot decode {path!r} as an image: {_op_message(err)}") from None
    channels = {1: 1, 2: 4, 3: 3, 4: 4}[int(shape[2])]
    return [int(shape[0]), int(shape[1]), channels]


def _op_message(err) -> str:
    """A TensorFlow error's message without its node name and op tag."""
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", str(getattr(err, "message", err)))
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text, flags=re.S).strip() or type(err).__name__


def unreadable_images(paths: list, channels: int) -> list[tuple[str, str]]:
    """(path, reason) of each file of `paths` that cannot be read and decoded as Keras reads
    it (`channels` 1, 3 or 4), in the order of `paths`.

    The files are decoded in parallel with `tf.data`, and the failures (dropped by
    `ignore_errors`) decoded again one by one, for their reason.
    """
    import tensorflow as tf

    def decode(path):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=channels, expand_animations=False
        )
        return path, tf.shape(image)

    decoded = (
        tf.data.Dataset.from_tensor_slices(tf.constant(list(paths), dtype=tf.string))
        .map(
            tf.autograph.experimental.do_not_convert(decode),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .ignore_errors()
    )
    read = {path.decode() for path, _ in decoded.as_numpy_iterator()}
    bad = []
    for path in paths:
        if path in read:
            continue
        try:
            decode(tf.constant(path))
        except tf.errors.OpError as err:
            bad.append((path, _op_message(err)))
    return bad
