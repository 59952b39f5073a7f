"""Benchmarks: run on demand (`make bench` or `python -m bench NAME…`), print a table, write JSON to
bench/results/NAME.json. Targets from the issues are checked here, never in timed tests."""
