"""Search spaces: the `SearchSpace` protocol of `automl.search.base` over concrete architectures.

`MorphismSpace` holds layer graphs (`ArchitectureGraph`): fresh samples come from
the seed families with varied widths and depths, neighbours are network-morphism
children that can inherit their parent's weights.
"""

from __future__ import annotations

import numpy as np

from automl.graph import seeds
from automl.graph.architecture import ArchitectureGraph

_IMAGE_CHOICES = {
    "small_cnn": {
        "width": [16, 32, 64],
        "blocks": [1, 2, 3],
        "convs_per_block": [1, 2],
        "dropout": [0.0, 0.25, 0.5],
    },
    "resnet_cnn": {
        "width": [16, 32],
        "stages": [1, 2, 3],
        "blocks_per_stage": [1, 2],
        "dropout": [0.0, 0.25],
    },
}
_TABLE_CHOICES = {
    "mlp": {"width": [32, 64, 128, 256], "layers": [1, 2, 3], "dropout": [0.0, 0.1, 0.25, 0.5]},
}
_TEXT_CHOICES = {
    "bag_mlp": {"width": [32, 64, 128], "dropout": [0.0, 0.25, 0.5]},
    "embed_pool": {"width": [32, 64, 128], "length": [128, 256, 512]},
    "conv_text": {
        "width": [32, 64],
        "filters": [64, 128],
        "kernel_size": [3, 5],
        "blocks": [1, 2],
        "length": [128, 256, 512],
        "dropout": [0.25, 0.5],
    },
}
# the smallest height and width at which the search starts from `_DEFAULTS["small_cnn_large"]`
LARGE_SEED_SIZE = 24
# the smallest height and width at which `MorphismSpace(augment=True)` starts with augmentation
AUGMENT_SEED_SIZE = 24
# Default parameter cap: models that train in seconds to minutes on a CPU.
# Auto-Keras used 2**25 on a GPU; pass max_model_size to go bigger.
DEFAULT_MAX_MODEL_SIZE = 2**19


def table_size_cap(rows: int) -> int:
    """The default parameter cap on a table of `rows` rows: 50 per row, from 8,192 to 2**19.

    Larger networks only memorise a small table, and take the time that smaller
    ones could use.
    """
    return int(min(DEFAULT_MAX_MODEL_SIZE, max(2**13, 50 * rows)))


def text_size_cap(tokens: int) -> int:
    """The default parameter cap for text: 160 per vocabulary token, from 2**19 to 2**24.

    A text model's size is mostly its vocabulary (a bag of tokens into the output,
    an embedding table), so the cap grows with it.
    """
    return int(min(2**24, max(DEFAULT_MAX_MODEL_SIZE, 160 * tokens)))


_DEFAULTS = {
    "small_cnn": {"width": 32, "blocks": 2, "convs_per_block": 2, "dropout": 0.25},
    # images of `LARGE_SEED_SIZE` pixels or more: narrower and one block deeper, which
    # reaches a higher accuracy per second of training (`benchmarks/seeds.py`: at 28x28,
    # half the seconds per epoch and 99.0% test accuracy in 40 s against 96.3%)
    "small_cnn_large": {"width": 16, "blocks": 3, "convs_per_block": 2, "dropout": 0.25},
    "linear": {},
    "mlp": {"width": 64, "layers": 2, "dropout": 0.1},
    "bag_linear": {},
}
# what a search tries first, in order: for tables, the simplest model that can win
_INITIAL = {
    "image": ("small_cnn",),
    "table": ("linear", "mlp"),
    "text": ("bag_linear",),
}


class MorphismSpace:
    """Layer graphs for one task: sampled from seed graphs, grown by network morphism.

    `screen`, when set (the search engine sets it to `automl.search.screening.GraphScreener`),
    scores a list of graphs without training them, higher meaning more promising.

    Args:
        input_shape: shape the graph starts from, (H, W, C) for images or (features,).
        units: size of the output layer.
        activation: activation of the output layer ("softmax" or "linear").
        max_model_size: largest parameter count a candidate may have
            (None: `DEFAULT_MAX_MODEL_SIZE`, or `text_size_cap` for text).
        tokens: for text, the number of token ids the input holds (the graph's
            input is then a token sequence of shape (length,)).
        idf: for text, the vocabulary's (rank, idf) points, which bags of tokens weigh by.
        augment: for images of at least `AUGMENT_SEED_SIZE` pixels on each side, start
            every initial and sampled graph with an augment node after its input
            (`automl.morphism.augment`). Without it, a search adds augmentation only
            by the augment morphism.
    """

    def __init__(
        self,
        input_shape,
        units: int,
        activation: str = "softmax",
        max_model_size: int | None = None,
        tokens: int | None = None,
        idf: list | None = None,
        augment: bool = False,
    ):
        self.input_shape = tuple(input_shape)
        self.units = units
        self.activation = activation
        self.tokens, self.idf = tokens, idf or None
        if tokens:
            self.kind, self.choices = "text", _TEXT_CHOICES
            self.max_model_size = max_model_size or text_size_cap(tokens)
        else:
            self.kind = "image" if len(self.input_shape) == 3 else "table"
            self.choices = _IMAGE_CHOICES if self.kind == "image" else _TABLE_CHOICES
            self.max_model_size = max_model_size or DEFAULT_MAX_MODEL_SIZE
        self.screen = None  # graphs -> training-free scores; the search engine sets it
        self.augment = augment

    def _build(self, family: str, sizes: dict) -> ArchitectureGraph:
        if self.tokens:
            sizes = {**sizes, "tokens": self.tokens, "idf": self.idf}
        graph = seeds.SEEDS[family](self.input_shape, self.units, self.activation, **sizes)
        if (
            self.augment
            and self.kind == "image"
            and min(graph.input_shape[:2]) >= AUGMENT_SEED_SIZE
        ):
            from automl.morphism.augment import augment

            graph = ArchitectureGraph(list(augment(graph).nodes.values()))  # a seed: no history
        return graph

    def _fits(self, graph: ArchitectureGraph) -> bool:
        return graph.count_params() <= self.max_model_size

    def initial(self) -> list[ArchitectureGraph]:
        """Default architectures tried before any random one (for tables: linear, then an
        MLP; for text: TF-IDF of words and bigrams into the output)."""
        graphs = [
            self._build(family, self._default_sizes(family)) for family in _INITIAL[self.kind]
        ]
        return [graph for graph in graphs if self._fits(graph)]

    def _default_sizes(self, family: str) -> dict:
        """The sizes of the default `family` seed for this space's input."""
        shape = self.input_shape
        large = family == "small_cnn" and len(shape) == 3 and min(shape[:2]) >= LARGE_SEED_SIZE
        return _DEFAULTS["small_cnn_large" if large else family]

    def sample(self, rng: np.random.Generator) -> ArchitectureGraph:
        families = sorted(self.choices)
        graph = None
        for _ in range(50):
            family = families[int(rng.integers(len(families)))]
            sizes = {k: v[int(rng.integers(len(v)))] for k, v in self.choices[family].items()}
            graph = self._build(family, sizes)
            if self._fits(graph):
                return graph
        smallest = {k: min(v) for k, v in self.choices[families[0]].items()}
        return self._build(families[0], smallest)

    def neighbours(self, arch: ArchitectureGraph, rng: np.random.Generator) -> list:
        from automl.morphism.operators import random_children

        return random_children(arch, rng, n=8, max_model_size=self.max_model_size)

    def to_graph(self, arch: ArchitectureGraph) -> ArchitectureGraph:
        return arch

    def cost_features(self, arch: ArchitectureGraph) -> np.ndarray:
        """What predicts a graph's seconds per epoch (`automl.search.cost.cost_features`)."""
        from automl.search.cost import cost_features

        return cost_features(arch)

    def key(self, arch: ArchitectureGraph) -> str:
        return arch.key()

    def dumps(self, arch: ArchitectureGraph) -> str:
        return arch.to_json()

    def loads(self, text: str) -> ArchitectureGraph:
        return ArchitectureGraph.from_json(text)
