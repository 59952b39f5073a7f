"""python -m bench [NAME …]: run the named benchmarks (default: all), each printing a table and writing JSON."""
from __future__ import annotations

import importlib
import sys

# pool builds the real pool's lakehouse that paragraph_dedup and ablation read: keep it before them
BENCHMARKS = ("extraction_quality", "throughput", "dedup_accuracy", "dedup_speed", "quality", "neural", "pool", "paragraph_dedup",
              "ablation", "serve")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== {name} ===")
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
