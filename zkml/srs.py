"""Which structured reference string (SRS) a circuit may use, by network.

`ezkl.gen_srs` makes an SRS on this machine: whoever ran it knows its toxic waste and can forge
proofs, so it is for local development chains only (the embedded chain, anvil). Any other network
needs the SRS of a public ceremony (the perpetual powers of tau, as ezkl's `get_srs` would fetch
it), supplied as a file whose sha256 matches a pinned value; anything else is refused.

Pins live in `srs_pins.json` next to this module, one sha256 per logrows. They are recorded by a
person from a machine that can reach the ceremony's files, never computed here: this project runs
offline and does not invent them. With no pin for a circuit's logrows, live networks are refused
with a message that says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zkml.errors import ZkmlError

PINS_PATH = Path(__file__).with_name("srs_pins.json")
"""sha256 of the public-ceremony SRS file for each logrows (`{"logrows": {"17": "ab12..."}}`)."""


class SrsError(ZkmlError):
    """The SRS offered for a circuit is not acceptable on the target network."""


@dataclass(frozen=True)
class SrsPolicy:
    """`local`: the SRS may be generated here. Otherwise `path` must be given and its sha256 must
    equal `pins[logrows]`."""

    local: bool
    path: Path | None = None
    pins: Mapping[int, str] | None = None

    @classmethod
    def for_local_chain(cls) -> SrsPolicy:
        return cls(local=True)

    @classmethod
    def for_live_network(cls, path: Path | None, pins: Mapping[int, str] | None = None) -> SrsPolicy:
        return cls(local=False, path=path, pins=load_pins() if pins is None else pins)

    @property
    def label(self) -> str:
        """A short name for cache keys: keys made from different SRS files are different keys."""
        return "gen-srs" if self.local else "public"


def load_pins(path: Path = PINS_PATH) -> dict[int, str]:
    """The pinned sha256 per logrows; an unreadable file is an error, not an empty table."""
    try:
        raw = json.loads(path.read_text(encoding="utf8"))
        table = raw["logrows"]
        return {int(k): str(v).lower() for k, v in table.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SrsError(f"{path}: not a readable SRS pin file ({exc})") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_public_srs(policy: SrsPolicy, logrows: int) -> Path:
    """The SRS file to use on a live network, once its sha256 matches the pin for `logrows`."""
    if policy.local:
        raise SrsError("a local-chain policy has no public SRS to check")
    if policy.path is None:
        raise SrsError(
            "this network is not a local development chain: an SRS made by gen_srs would let whoever made it "
            f"forge proofs. Pass the public-ceremony SRS file for logrows {logrows} (--srs PATH)."
        )
    pins = policy.pins or {}
    pinned = pins.get(logrows)
    if pinned is None:
        raise SrsError(
            f"no public-ceremony sha256 is pinned for logrows {logrows} in {PINS_PATH.name}; "
            "record it from the ceremony's published file before proving for a live network"
        )
    if not policy.path.is_file():
        raise SrsError(f"SRS file {policy.path} does not exist")
    actual = sha256_of(policy.path)
    if actual != pinned:
        raise SrsError(
            f"SRS file {policy.path} has sha256 {actual}, but the public ceremony's file for logrows {logrows} "
            f"is pinned as {pinned}: refusing it"
        )
    return policy.path
