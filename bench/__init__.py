"""Runnable benchmarks: `python -m bench.run` prints figures beside same-run baselines."""
