"""The one exception root of the agents package.

Subclasses also inherit the matching builtin so callers can catch either. A retryable failure
(the world may change: an RPC times out) is told apart from a permanent one (the input is wrong)
by type, so retry loops never retry what cannot succeed.
"""

from __future__ import annotations


class ProofmintError(Exception):
    """Root of every error proofmint raises on purpose."""


class RetryableError(ProofmintError):
    """A failure that may pass if the same call is tried again later."""


class PermanentError(ProofmintError):
    """A failure that the same call will meet again: fix the input or the set-up."""


class ToolchainError(PermanentError, RuntimeError):
    """A tool the project needs is missing or the wrong version; the message says what to install."""
