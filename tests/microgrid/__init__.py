"""Tests of the microgrid part (readers, surplus)."""
