"""Architecture representation: graphs of layer specs (no TensorFlow outside builder)."""

from automl.graph.architecture import ArchitectureGraph, Node

__all__ = ["ArchitectureGraph", "Node"]
