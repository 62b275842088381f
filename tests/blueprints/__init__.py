"""Tests of the blueprints, through HA's automation engine."""
