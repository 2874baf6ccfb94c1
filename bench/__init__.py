"""Benchmarks of wickode; run ``python -m bench`` (or ``wickode bench``). See bench/README.md."""
