"""Auto-Keras network morphism: function-preserving graph operations and weight transfer.

`automl.morphism.operators` (with `automl.morphism.skips`, `automl.morphism.text` for
text graphs and `automl.morphism.augment` for images) works on graphs only (no TensorFlow);
`automl.morphism.weights.inherit_weights` copies a trained parent's weights into
a morphed child so that it starts from the parent's function.
"""

from automl.morphism.operators import (
    IMAGE_AUGMENT_OPERATIONS,
    OPERATIONS,
    TEXT_OPERATIONS,
    add_skip,
    apply_op,
    apply_ops,
    concat_skip,
    deepen,
    random_children,
    widen,
)
from automl.morphism.text import text_branch
from automl.morphism.weights import inherit_weights

__all__ = [
    "IMAGE_AUGMENT_OPERATIONS",
    "OPERATIONS",
    "TEXT_OPERATIONS",
    "add_skip",
    "apply_op",
    "apply_ops",
    "concat_skip",
    "deepen",
    "inherit_weights",
    "random_children",
    "text_branch",
    "widen",
]
