"""Reliability corpus: bad inputs, interruption and determinism of the participant level."""
