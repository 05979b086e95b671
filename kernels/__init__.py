"""Graph kernels for Gaussian processes over architectures (imported as `automl.kernels`).

This package imports no TensorFlow.
"""
