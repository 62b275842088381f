"""Tests of the HashGrid integration."""
