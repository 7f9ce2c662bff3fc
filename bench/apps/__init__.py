"""Baseline WSGI apps the benchmarks compare bridge against (``bench.apps.<name>:app``)."""
