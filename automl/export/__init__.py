"""Exporting a fitted model: the Keras file with its sidecar, and SavedModel / TFLite / ONNX.

`load_model(path)` reads a `.keras` file and its sidecar; `predict_with(model,
preprocessor, target, x)` predicts from raw data (images, tables, texts) on any backend.
"""

from automl.export.keras_file import load_model, predict_with

__all__ = ["load_model", "predict_with"]
