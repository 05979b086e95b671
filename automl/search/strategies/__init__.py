"""Search strategies: each proposes the next architecture from the history of scored ones."""
