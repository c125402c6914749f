"""Helpers for tests and benchmarks that run real worker processes."""
