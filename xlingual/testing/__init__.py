"""Builders of tiny, random-weight models for tests, demos and benchmarks (nothing is downloaded)."""
