"""make chaos: the whole stack under fire (python -m chaos)."""
