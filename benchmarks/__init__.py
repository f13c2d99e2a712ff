"""Performance scripts (run from the repository root: ``python -m benchmarks.NAME`` or
``python benchmarks/NAME.py``); not part of the installed package."""
