"""Shared test helpers of speechmodel (not a test module)."""
