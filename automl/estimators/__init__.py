"""What users call: the estimators (images, tables), their argument checks, and their results."""
