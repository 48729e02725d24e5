"""zfsrep test suite (package so that `python -m tests.lab` works)."""
