"""Base layer: generic helpers every other layer may use (numpy and the standard library only)."""
