"""python -m benchmarks: the optbench command line (benchmarks/cli.py)."""

from benchmarks.cli import main

main()
