"""NAS-Bench-201: the cell codec, its search space and moves, and the shipped CIFAR-100 table."""
