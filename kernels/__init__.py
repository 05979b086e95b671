"""Graph kernels for Gaussian processes over architectures (imported as `automl.kernels`).

- `WLKernel`: Weisfeiler-Lehman subtree kernel (`wl.py`).
- `EditDistanceKernel`: the Auto-Keras edit distance made positive semi-definite
  by a Bourgain embedding or eigenvalue clipping (`edit_distance.py`, `embedding.py`).
- `GraphKernel`, `LabelledGraph`, `as_labelled`: the scikit-learn kernel base and
  the one graph form every kernel reads (`base.py`).

Every kernel takes lists of `ArchitectureGraph`s, NAS-Bench-201 cells or their arch
strings, so `GaussianProcessRegressor(kernel=ConstantKernel() * WLKernel() + WhiteKernel())`
fits on architectures directly. This package imports no TensorFlow.
"""

from automl.kernels.base import GraphKernel, LabelledGraph, as_labelled, clear_caches
from automl.kernels.edit_distance import EditDistanceKernel, distance_matrix
from automl.kernels.wl import WLKernel

__all__ = [
    "EditDistanceKernel",
    "GraphKernel",
    "LabelledGraph",
    "WLKernel",
    "as_labelled",
    "clear_caches",
    "distance_matrix",
]
