"""One exception hierarchy: the CLI turns any BenchError into one line and an exit code."""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error the harness reports to a user (exit code 2 unless said otherwise)."""

    exit_code = 2


class ScenarioError(BenchError):
    """A scenario file is missing, malformed or asks for something impossible."""


class UsageError(BenchError):
    """Bad command-line input: a missing run directory, an unknown format."""


class TargetError(BenchError):
    """A target failed to start, crashed, or refused every session."""

    exit_code = 3


class ProtocolError(BenchError):
    """A target answered in a way its transport does not allow."""

    exit_code = 3
