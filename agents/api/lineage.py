"""Lineage as the chain records it: every `AssetRegistered` event names the asset's parents, so
an incremental index of those events (only the blocks since its last look, at most once per
`refresh_s`) gives each asset's parents and derivatives, including assets registered by others
than these agents. `graph` walks it both ways from one asset, a bounded number of generations.

A batch claim may take a record over (a squatter's, say): the registry then emits a second
`AssetRegistered` for the digest, with a higher `seq`, and that one replaces the first here
(creator, parents and all); an event seen again is ignored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.api.chainview import EventIndex
from agents.runtime.chain import ChainClient

REGISTRY = "ProvenanceRegistry"
#: At most this many assets in one lineage answer.
MAX_NODES = 64


@dataclass(frozen=True)
class OnChain:
    """An asset as its `AssetRegistered` event tells it."""

    digest: bytes
    creator: str
    model_id: int
    params_digest: bytes
    input_commitment: bytes
    parents: tuple[bytes, ...]
    seq: int
    metadata_uri: str
    transaction: str

    def view(self) -> dict[str, Any]:
        return {
            "digest": "0x" + self.digest.hex(),
            "creator": self.creator,
            "modelId": self.model_id,
            "paramsDigest": "0x" + self.params_digest.hex(),
            "inputCommitment": "0x" + self.input_commitment.hex(),
            "parents": ["0x" + p.hex() for p in self.parents],
            "seq": self.seq,
            "metadataURI": self.metadata_uri,
            "transaction": self.transaction,
        }


@dataclass
class Graph:
    root: bytes
    nodes: list[bytes]
    edges: list[tuple[bytes, bytes]]
    truncated: bool


class LineageIndex:
    def __init__(self, client: ChainClient, *, refresh_s: float = 1.0) -> None:
        self.client = client
        self.assets: dict[bytes, OnChain] = {}
        self.children: dict[bytes, list[bytes]] = {}
        self._registered = EventIndex(client, REGISTRY, "AssetRegistered", self._add, refresh_s)

    async def refresh(self) -> None:
        await self._registered.refresh()

    def _add(self, log: Any) -> None:
        args = log["args"]
        digest = bytes(args["contentDigest"])
        seq = int(args["seq"])
        known = self.assets.get(digest)
        if known is not None:
            if seq <= known.seq:  # this record, or one taken over since
                return
            for parent in known.parents:
                self.children[parent].remove(digest)
        parents = tuple(bytes(p) for p in args["parents"])
        self.assets[digest] = OnChain(
            digest=digest,
            creator=str(args["creator"]),
            model_id=int(args["modelId"]),
            params_digest=bytes(args["paramsDigest"]),
            input_commitment=bytes(args["inputCommitment"]),
            parents=parents,
            seq=seq,
            metadata_uri=str(args["metadataURI"]),
            transaction="0x" + bytes(log["transactionHash"]).hex(),
        )
        for parent in parents:
            self.children.setdefault(parent, []).append(digest)

    async def get(self, digest: bytes, *, fresh: bool = True) -> OnChain | None:
        """The record of `digest`; on a miss (with `fresh`) the blocks since the last read are read
        at once, so an asset registered a moment ago (a derivative the dApp just sent) is found."""
        await self.refresh()
        if fresh and digest not in self.assets:
            await self._registered.refresh(force=True)
        return self.assets.get(digest)

    async def graph(self, root: bytes, depth: int) -> Graph:
        """The assets within `depth` generations of `root` (ancestors and descendants, not
        cousins), at most `MAX_NODES`, and the parent->child links among them."""
        await self.refresh()
        seen = {root}
        order = [root]
        truncated = False
        for step in (lambda d: self.assets[d].parents if d in self.assets else (), lambda d: self.children.get(d, [])):
            frontier = [root]
            for _ in range(depth):
                following: list[bytes] = []
                for node in frontier:
                    for nxt in step(node):
                        if nxt in seen:
                            continue
                        if len(order) >= MAX_NODES:
                            truncated = True
                            continue
                        seen.add(nxt)
                        order.append(nxt)
                        following.append(nxt)
                frontier = following
            truncated = truncated or any(n not in seen for node in frontier for n in step(node))
        edges = [
            (parent, node)
            for node in order
            for parent in (self.assets[node].parents if node in self.assets else ())
            if parent in seen
        ]
        return Graph(root, order, edges, truncated)
