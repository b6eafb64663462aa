"""Errors that explain themselves. No Django or DRF here: scripts/run.py imports modules
that use it (alerts.fetchers) before Django is set up."""


class ExplainedError(Exception):
    """An error whose message says what failed in our own words: stored on a row as it is."""
