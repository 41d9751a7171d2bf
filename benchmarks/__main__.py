"""python -m benchmarks: the optbench command line (benchmarks/cli.py)."""

from benchmarks.cli import main

if __name__ == "__main__":  # the CNN benchmark's spawned workers import this module too
    main()
