"""Exporting a fitted model: the Keras file with its sidecar, and SavedModel / TFLite / ONNX."""
