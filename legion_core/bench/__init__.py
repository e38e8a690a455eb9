"""Benchmarks: one module per `legion bench` command (parity = `envs`, bags = `record`), each returning a
JSON-able report; the figures (median, percentiles, ratios) come from legion_core.base.stats."""
