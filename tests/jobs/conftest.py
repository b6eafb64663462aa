"""Fixtures of the job platform's tests."""

import json

import pytest


@pytest.fixture
def policies(settings):
    """Edit a copy of the queue policies for one test."""
    copied = json.loads(json.dumps(settings.QUEUE_POLICIES))

    def set_policy(queue, **values):
        copied[queue].update(values)
        settings.QUEUE_POLICIES = json.loads(json.dumps(copied))

    return set_policy
