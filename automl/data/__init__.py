"""Data in: arrays and DataFrames, preprocessing fitted on training data, targets, built-in datasets, streams."""
