"""Estimators for images: arrays (samples, H, W[, C]) of any value range, or a folder of images."""

from __future__ import annotations

from automl.estimators.base import AutoClassifier, AutoModel


class ImageClassifier(AutoClassifier):
    """Searches a Keras image classifier. Images (samples, H, W[, C]), any value range."""

    _kind = "image"


class ImageRegressor(AutoModel):
    """Searches a Keras image regressor. Images (samples, H, W[, C]), any value range."""

    _kind = "image"
    _task = "regression"
