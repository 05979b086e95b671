"""The search engine: search backends, the keras-tuner oracle and tuner, the final model."""
