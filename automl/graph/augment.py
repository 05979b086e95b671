"""The "augment" layer type: random image augmentation that acts in training only.

An image graph may hold one `Node(k, "augment", {...}, (input,))` right after its input
node (`automl.morphism.augment` inserts it). While the model trains, it moves each
image by a random translation, rotation and zoom (and, with `flip`, a left-right
mirror) and changes its contrast; in inference it is the identity. It has no weights,
so a graph with one computes, in inference, the function of the graph without it.

Augmentation is for training only: `ArchitectureGraph.inference_graph()` gives the graph
without its training-only nodes (`TRAINING_ONLY`), which is what an exported model holds;
`automl.graph.builder.apply_graph(..., inference=True)` builds that graph's layers with
the same names, so a trained model's weights copy into it by layer name, and
`automl.graph.builder.inference_model` removes them from a built model.

The Keras layer (`automl.graph.augment_keras.ImageAugment`) is imported only when a
Keras layer is made. Pure Python here.
"""

from __future__ import annotations

from typing import Any

from automl.graph.layers import ANY, PASS, LayerType, Params, Shape, _image, register

# layer types that act only while training: left out of an inference graph
TRAINING_ONLY = ("augment",)
AUGMENT_DEFAULTS: Params = {
    "translate": 0.1,
    "rotate": 0.05,
    "zoom": 0.1,
    "contrast": 0.1,
    "flip": False,
}


@register
class Augment(LayerType):
    """Random translation, rotation, zoom and contrast (and optionally a horizontal flip).

    Parameters: `translate` (largest shift, a fraction of the height and width),
    `rotate` (largest rotation, a fraction of a full turn), `zoom` and `contrast`
    (largest relative changes), all in [0, 1), and `flip` (mirror half the images left
    to right; off by default, since digits and text must not be mirrored).
    """

    name = "augment"
    defaults = dict(AUGMENT_DEFAULTS)
    channels = PASS
    sign = ANY
    keras_class = "ImageAugment"

    def _shape(self, params: Params, ins: list[Shape]) -> Shape:
        for key in ("translate", "rotate", "zoom", "contrast"):
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number. Received: {key}={value!r}")
            if not 0 <= value < 1:
                raise ValueError(f"{key} must be in [0, 1). Received: {key}={value!r}")
        if not isinstance(params["flip"], bool):
            raise ValueError(f"flip must be True or False. Received: flip={params['flip']!r}")
        return _image(ins[0])

    def keras_layer(self, params: Params, name: str) -> Any:
        from automl.graph.augment_keras import ImageAugment  # imports Keras

        return ImageAugment(name=name, **self.keras_kwargs(params))

    def keras_kwargs(self, params: Params) -> Params:
        return {key: params[key] for key in AUGMENT_DEFAULTS}
