"""End-to-end tests: a real browser against the demo."""
