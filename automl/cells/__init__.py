"""Differentiable NAS with cells as Keras layers: MiLeNAS and DARTS.

Importing this package registers its layers with Keras, so saved models that use
them load with `keras.models.load_model` and safe mode on.

Example:
    >>> from automl.cells.search import build_network, run_search  # doctest: +SKIP
    >>> result = run_search(x, y, num_classes=10, epochs=5)  # doctest: +SKIP
"""

from __future__ import annotations

from automl.cells.genotype import Genotype, ModelSizeRecord, derive_genotype
from automl.cells.layers import Cell, MixedOp, ResidualReduction, SearchCell
from automl.cells.ops import DARTS_OPS, NB201_OPS, OPS, FactorizedReduce, Pool, Zero, build_op
from automl.cells.supernet import SuperNet

__all__ = [
    "DARTS_OPS",
    "NB201_OPS",
    "OPS",
    "Cell",
    "FactorizedReduce",
    "Genotype",
    "MixedOp",
    "ModelSizeRecord",
    "Pool",
    "ResidualReduction",
    "SearchCell",
    "SuperNet",
    "Zero",
    "build_op",
    "derive_genotype",
]
