"""Simulators that speak the real protocols, for tests and the demo."""
