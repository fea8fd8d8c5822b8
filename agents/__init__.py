"""proofmint agents: the off-chain daemons, their runtime, the API and the `proofmint` CLI."""

__version__ = "0.1.0"
