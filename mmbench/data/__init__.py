"""Data sources and decoding."""
