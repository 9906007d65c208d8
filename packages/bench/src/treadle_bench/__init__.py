"""Benchmark harness for treadle: start each server, drive it with wrk, compare to treadle."""
