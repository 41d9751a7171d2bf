"""Benchmarks that need a CUDA device; run on the lent GPU machine by run_on_device.sh."""
