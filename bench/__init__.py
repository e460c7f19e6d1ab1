"""Benchmarks that print figures comparable across machines (ratios to a same-run baseline)."""
