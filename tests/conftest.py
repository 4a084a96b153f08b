"""Shared fixtures. Real-component fixtures live beside the tests that use them."""
