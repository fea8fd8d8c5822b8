"""The one exception root of the zkml package.

Every failure here is permanent: bad input, settings or artifacts, a setup that cannot run, a
proof that does not verify. Retrying the same call does not help, so callers that retry (the
agents' stages) give up at once, as they do for their own permanent errors. Subclasses also
inherit the matching builtin where one fits, so callers can catch either. zkml imports nothing
from the agents: it sits below them.
"""

from __future__ import annotations


class ZkmlError(Exception):
    """A zkml failure that retrying does not fix."""
