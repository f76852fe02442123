"""Fixtures for the DNS tests: real BIND servers on loopback (see tests/support/bind.py)."""

from tests.support.bind import bind_factory, bind_server  # noqa: F401  (pytest fixtures)
