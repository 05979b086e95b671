"""Graph export formats: SavedModel, TFLite and ONNX, with the preprocessing inside.

Each format holds one serving function traced with TensorFlow. It takes raw inputs:
images as float32 arrays of the shape `fit` saw; a table as float32 columns where
NaN marks a missing value (filled with the training median inside the model); a
DataFrame's categorical columns as strings, matched against the training vocabulary
inside the model (an unseen value is the out-of-vocabulary category, as in
`predict`). A table's inputs are named after its columns (see `input_spec`).

Free text (a text model's input, a table's text column) is a string input that the
model tokenises with TensorFlow's string ops (`keras.layers.TextVectorization`).
Neither converter carries them: TFLite has no kernel for `StringNGrams` even with
`SELECT_TF_OPS`, and ONNX has no `StaticRegexReplace`, `StringSplitV2` or
`StringNGrams`. So text models export to "keras" and "savedmodel" only
(`check_text_format`).

`table_feed` turns a DataFrame into the dict of numpy arrays these formats take, and
`load_tflite` runs a TFLite file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings

import numpy as np

from automl.data import text as text_mod
from automl.errors import InputError
from automl.training.keras_api import patch_tf2onnx

GRAPH_FORMATS = ("savedmodel", "tflite", "onnx")
TEXT_FORMATS = ("keras", "savedmodel")  # the formats that carry free text
ONNX_OPSET = 17


def check_backend(fmt: str) -> None:
    """Refuse a graph format off the TensorFlow backend: its serving function is a TF graph."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise InputError(
            f"format={fmt!r} traces the model with TensorFlow, so it needs "
            f"KERAS_BACKEND=tensorflow (this process runs {keras.backend.backend()!r}). Save "
            "with format='keras', then export from a TensorFlow process."
        )


def _text_columns(preprocessor) -> list:
    """The names of a table's free-text columns (["input"] for a text model's input)."""
    if preprocessor.kind == "text":
        return ["input"]
    if preprocessor.kind == "columns":
        return [c["name"] for c in preprocessor.columns if c["kind"] == "text"]
    return []


def check_text_format(preprocessor, fmt: str) -> None:
    """Refuse a format that cannot carry free text, for a model that takes some.

    Raises:
        InputError: `fmt` is "tflite" or "onnx" and the model takes free text.
    """
    text = _text_columns(preprocessor)
    if text and fmt not in TEXT_FORMATS:
        what = "a text model" if preprocessor.kind == "text" else f"text columns {text}"
        raise InputError(
            f"format={fmt!r} cannot carry the tokeniser of {what}: its converter has no "
            "kernels for TensorFlow's string ops (StringNGrams, StaticRegexReplace). Export "
            f"text models as one of {list(TEXT_FORMATS)}."
        )


def input_spec(preprocessor) -> dict:
    """{input name: (shape without the batch axis, dtype)} of the exported formats."""
    if preprocessor.kind == "columns":
        return {
            c["input"]: ((1,), "float32" if c["kind"] == "numeric" else "string")
            for c in preprocessor.columns
        }
    if preprocessor.kind == "text":
        return {"input": ((1,), "string")}
    return {"input": (tuple(preprocessor.raw_shape), "float32")}


def table_feed(preprocessor, frame) -> dict:
    """A DataFrame (or 2-D array) as the dict of numpy arrays the exported formats take.

    Numbers are float32 with NaN where a value is missing; text is a str array.
    """
    import pandas as pd

    if preprocessor.kind != "columns":
        raise InputError("table_feed is for models fit on a DataFrame.")
    names = [c["name"] for c in preprocessor.columns]
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(np.asarray(frame, dtype=object), columns=names)
    feed = {}
    for c in preprocessor.columns:
        col = frame[c["name"]]
        if c["kind"] == "numeric":
            feed[c["input"]] = pd.to_numeric(col, errors="coerce").to_numpy("float32")[:, None]
        else:
            feed[c["input"]] = col.astype(str).where(col.notna(), "").to_numpy(str)[:, None]
    return feed


def _tokenisers(preprocessor) -> dict:
    """{input name: TextVectorization} for the text inputs of a model that takes token
    ids (one fit without string tensors); {} when it takes strings."""
    if preprocessor.string_inputs:
        return {}
    if preprocessor.kind == "text":
        length = preprocessor.graph_shape[0]
        return {"input": text_mod.vectorizer(preprocessor.vocabulary, length, "tokens")}
    return {
        c["input"]: text_mod.vectorizer(c["vocabulary"], c["length"], f"tokens_{c['input']}")
        for c in preprocessor.columns
        if c["kind"] == "text"
    }


def _with_tokenisers(model, preprocessor):
    """`model`, or for a model of token ids the model that makes them from strings first."""
    import keras

    tokenisers = _tokenisers(preprocessor)
    if not tokenisers:
        return model
    if preprocessor.kind == "text":
        strings = keras.Input(shape=(1,), name="input", dtype="string")
        return keras.Model(strings, model(tokenisers["input"](strings)))
    inputs = {
        name: keras.Input(shape=(1,), name=name, dtype="string")
        if name in tokenisers
        else keras.Input(shape=tensor.shape[1:], name=name, dtype=tensor.dtype)
        for name, tensor in model.input.items()
    }
    feed = {name: tokenisers[name](x) if name in tokenisers else x for name, x in inputs.items()}
    return keras.Model(inputs, model(feed))


def _coded(model, preprocessor):
    """`model` taking categorical columns as integer codes, its quantile bins computed by
    comparisons, and free text as strings (its other layers shared, not copied)."""
    import keras

    if preprocessor.kind != "columns":
        return _with_tokenisers(model, preprocessor)
    columns = {c["input"]: c for c in preprocessor.columns}

    def model_input(name):
        c = columns[name]
        if c["kind"] == "text" and not preprocessor.string_inputs:  # token ids
            return keras.Input(shape=(c["length"],), name=name, dtype="int32")
        dtype = {"numeric": "float32", "text": "string"}.get(c["kind"], "int32")
        return keras.Input(shape=(1,), name=name, dtype=dtype)

    inputs = {name: model_input(name) for name in model.input}

    def clone(layer):
        if isinstance(layer, keras.layers.StringLookup):
            return keras.layers.CategoryEncoding(
                layer.vocabulary_size(), output_mode="one_hot", name=layer.name
            )
        if isinstance(layer, keras.layers.Discretization):
            return _bucket_counter()(layer.bin_boundaries, name=layer.name)
        return layer

    coded = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    return _with_tokenisers(coded, preprocessor)


def _bucket_counter():
    """A layer equal to `Discretization` (bin index = boundaries at or below the value),
    made of comparisons and a sum, which every export format has."""
    import keras

    class BucketCounter(keras.layers.Layer):
        def __init__(self, boundaries, **kwargs):
            super().__init__(**kwargs)
            self.boundaries = [float(b) for b in boundaries]

        def call(self, x):
            above = keras.ops.greater_equal(x, keras.ops.convert_to_tensor(self.boundaries))
            return keras.ops.sum(keras.ops.cast(above, "float32"), axis=-1, keepdims=True)

    return BucketCounter


def serving_function(model, preprocessor, text_codes: bool = False):
    """A `tf.function` from raw inputs (see the module's docstring) to the model's outputs.

    With `text_codes`, categorical columns come in as int32 codes (1-based vocabulary
    index, 0 for an unseen value) instead of strings. Free text always comes in as
    strings; a model fit without string tensors gets a tokeniser in front (`_coded`).
    """
    import tensorflow as tf

    coded = _coded(model, preprocessor)
    spec = input_spec(preprocessor)
    if text_codes:
        text = [c["input"] for c in preprocessor.columns if c["kind"] == "text"]
        spec = {
            k: (shape, "int32" if dtype == "string" and k not in text else dtype)
            for k, (shape, dtype) in spec.items()
        }
    signature = {
        name: tf.TensorSpec((None, *shape), dtype, name=name)
        for name, (shape, dtype) in spec.items()
    }
    if preprocessor.kind == "columns":
        columns = {c["input"]: c for c in preprocessor.columns}

        def prepare(feed):
            out = {}
            for name, value in feed.items():
                c = columns[name]
                if c["kind"] == "numeric":
                    out[name] = tf.where(
                        tf.math.is_nan(value), tf.constant(c["fill"], tf.float32), value
                    )
                elif c["kind"] == "text" or text_codes:
                    out[name] = value
                else:  # the code is the 1-based vocabulary index, 0 for an unseen value
                    vocabulary = tf.constant(c["vocabulary"], tf.string)
                    hits = tf.cast(tf.equal(value, vocabulary[None, :]), tf.int32)
                    index = tf.range(1, len(c["vocabulary"]) + 1, dtype=tf.int32)
                    codes = tf.reduce_sum(hits * index[None, :], axis=1, keepdims=True)
                    out[name] = codes
            return out

        @tf.function(input_signature=[signature])
        def serve(feed):
            return {"output": coded(prepare(feed), training=False)}

        return serve, coded
    fill = preprocessor.fill or preprocessor.mean if preprocessor.kind == "table" else None

    @tf.function(input_signature=[signature["input"]])
    def serve_array(x):
        if fill is not None:
            x = tf.where(tf.math.is_nan(x), tf.constant(np.asarray(fill, "float32")), x)
        return {"output": coded(x, training=False)}

    return serve_array, coded


def save_savedmodel(model, preprocessor, path: str) -> str:
    """A TensorFlow SavedModel folder with the signature `serving_default`."""
    import tensorflow as tf

    serve, coded = serving_function(model, preprocessor)
    module = tf.Module()
    module.model, module.serve = coded, serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    return path


def frozen_function(model, preprocessor, text_codes: bool = False):
    """(frozen, serve): the serving function's concrete function with the weights as
    constants, and a `tf.function` of the same signature that calls it."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    serve, _ = serving_function(model, preprocessor, text_codes)
    concrete = serve.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete)
    names = [spec.name for spec in tf.nest.flatten(concrete.structured_input_signature)]

    @tf.function(input_signature=concrete.structured_input_signature[0])
    def serve_frozen(*args):
        flat = dict(zip(names, tf.nest.flatten(args)))
        return {"output": frozen(*[flat[n] for n in names])[0]}

    return frozen, serve_frozen


def save_tflite(model, preprocessor, path: str) -> str:
    """A TFLite flatbuffer of the serving function (builtin ops only, weights as constants)."""
    import tensorflow as tf

    _, serve = frozen_function(model, preprocessor)
    module = tf.Module()
    module.serve = serve
    with tempfile.TemporaryDirectory() as folder:  # a SavedModel without variables
        tf.saved_model.save(module, folder, signatures={"serving_default": serve})
        content = tf.lite.TFLiteConverter.from_saved_model(folder).convert()
    with open(path, "wb") as f:
        f.write(content)
    return path


def save_onnx(model, preprocessor, path: str) -> str:
    """An ONNX model of the serving function, converted by tf2onnx (opset `ONNX_OPSET`)."""
    try:
        import tf2onnx
    except ImportError:
        raise InputError(
            "format='onnx' needs the tf2onnx package: pip install 'automl-keras[onnx]'."
        ) from None
    patch_tf2onnx()  # tf2onnx still uses numpy names that numpy 2 removed; Keras patches them
    frozen, _ = frozen_function(model, preprocessor, text_codes=True)
    inputs = [t.name for t in frozen.inputs]
    outputs = [t.name for t in frozen.outputs]
    renames = {t: t.split(":")[0] for t in inputs}
    renames[outputs[0]] = "output"
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(),
        input_names=inputs,
        output_names=outputs,
        opset=ONNX_OPSET,
        tensors_to_rename=renames,
    )
    _text_to_codes(proto, preprocessor)
    import onnx

    onnx.save(proto, path)
    return path


def _text_to_codes(proto, preprocessor) -> None:
    """Make each text input of an ONNX graph a string input, coded by an ONNX-ML LabelEncoder."""
    from onnx import TensorProto, helper

    if preprocessor.kind != "columns":
        return
    graph = proto.graph
    for c in preprocessor.columns:
        if c["kind"] != "categorical":
            continue
        name = c["input"]
        (entry,) = [i for i in graph.input if i.name == name]
        graph.input.remove(entry)
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.STRING, ["N", 1]))
        for node in graph.node:  # the graph now reads the codes under another name
            node.input[:] = [f"{name}_codes" if i == name else i for i in node.input]
        encode = helper.make_node(
            "LabelEncoder",
            [name],
            [f"{name}_codes64"],
            domain="ai.onnx.ml",
            keys_strings=list(c["vocabulary"]),
            values_int64s=list(range(1, len(c["vocabulary"]) + 1)),
            default_int64=0,
        )
        cast = helper.make_node(
            "Cast", [f"{name}_codes64"], [f"{name}_codes"], to=TensorProto.INT32
        )
        graph.node.insert(0, cast)
        graph.node.insert(0, encode)
    if not any(o.domain == "ai.onnx.ml" for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))


def load_tflite(path: str):
    """Run an exported TFLite model: returns `run(**feed) -> {"output": array}`.

    It is TensorFlow's `tf.lite.Interpreter` signature runner, with the interpreter's
    deprecation notice and its delegate's start-up line kept out of the output.
    """
    import tensorflow as tf

    from automl.startup import native_stderr_silenced

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner = tf.lite.Interpreter(model_path=os.fspath(path)).get_signature_runner()

    def run(**feed):
        with native_stderr_silenced():
            return runner(**feed)

    return run


@contextlib.contextmanager
def _quiet():
    """The converters' deprecation warnings and info logs, kept out of the user's output."""
    names = ("tensorflow", "tf2onnx", "absl")
    levels = {name: logging.getLogger(name).level for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def save_graph_format(model, preprocessor, fmt: str, path: str) -> str:
    """Write `model` as `fmt` (one of `GRAPH_FORMATS`) to `path`, whole or not at all.

    Raises:
        InputError: not on TensorFlow, or a text model and a format without text
            (`check_text_format`).
    """
    check_text_format(preprocessor, fmt)
    check_backend(fmt)
    writer = {"savedmodel": save_savedmodel, "tflite": save_tflite, "onnx": save_onnx}[fmt]
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        with _quiet():
            writer(model, preprocessor, tmp)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.remove(tmp)
    return path
