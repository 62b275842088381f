"""Tests of the mining part."""
