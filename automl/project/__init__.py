"""A project folder on disk: its lock, atomic files, checksums, the data fingerprint."""
