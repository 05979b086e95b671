"""Keras, as automl uses it beyond its public API: the one module that touches `keras.src`.

Three things automl needs are not (or not only) public in Keras 3: the scope that maps
variables to values for a stateless step (`keras.StatelessScope`, defined in
`keras.src.backend.common.stateless_scope`), Keras's patch that lets tf2onnx run
on numpy 2 (`keras.src.export.tf2onnx_lib.patch_tf2onnx`), and a model's weights file
written into memory (`keras.src.saving.saving_lib`: `model.save_weights` only takes a
path, and h5py crashes the process when the disk fills under it). Every other module uses
the functions here, so a Keras release that moves one breaks here, and
`tests/test_adapters.py` says which name went missing. Keras is imported inside the
functions: importing this module imports no Keras or TensorFlow.
"""

from __future__ import annotations

# the names of Keras this module relies on, by module (see tests/test_adapters.py)
PRIVATE_NAMES = {
    "keras": ("StatelessScope",),
    "keras.src.export.tf2onnx_lib": ("patch_tf2onnx",),
    "keras.src.saving.saving_lib": ("H5IOStore", "_save_state"),
}


def stateless_scope(state_mapping):
    """A `keras.StatelessScope` in which each variable of `state_mapping` ((variable,
    value) pairs) reads as its value, and assignments are collected instead of applied
    (`scope.get_current_value(variable)`)."""
    import keras

    return keras.StatelessScope(state_mapping=state_mapping)


def patch_tf2onnx() -> bool:
    """Apply Keras's patch that lets tf2onnx run on numpy 2 (tf2onnx still uses numpy
    names that numpy 2 removed); whether this Keras has it."""
    try:
        from keras.src.export.tf2onnx_lib import patch_tf2onnx as patch

        patch()
    except ImportError:
        return False
    return True


def weights_bytes(model) -> bytes | None:
    """The bytes of `model.save_weights(path)`'s file, made in memory (h5py never writes
    to disk), or None where this Keras lacks the names used (then write with
    `model.save_weights`). The same steps as Keras's `saving_lib.save_weights_only`."""
    import io

    try:
        from keras.src.saving.saving_lib import H5IOStore, _save_state
    except ImportError:
        return None
    if not model.built:
        return None  # save_weights says what is wrong
    buffer = io.BytesIO()
    store = H5IOStore(buffer, mode="w")
    _save_state(
        model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
    )
    store.close()
    return buffer.getvalue()
