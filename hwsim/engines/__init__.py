"""Engines turn a Phase into a PhaseResult following docs/timing-model.md."""
