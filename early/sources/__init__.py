"""Seed sources: where a seed can come from, one module each."""
