"""Two hosts, `kill -9` of one whole host at random points: zero orphans, zero duplicates.

Two groups of processes (host_worker.py), each with a state folder of its own, share nothing but
PostgreSQL (the journal), Redis (wake-ups), the PostgreSQL block store and the chain (an anvil
node; the test process holds the deployment). First host A runs the generator and the curator
(with a key of its own: its market watcher sends) and host B the rest (publisher, registrar,
prover, settlement): every image crosses hosts through the shared store. Then both hosts run
every stage at once (the chain-writing stages share the operator's key: one host leads, the
other stands by). Through both phases one whole host (its process group) is killed at a random
point while it holds work or a transaction is in flight, at least ten times, and restarted a
moment later while the other host keeps working; a request is added after every kill (and more
whenever fewer than four are on their way). At the end host A is killed for good and host B, the
survivor, finishes the work, then drains on SIGTERM. Then:
- orphans: every job is at a final stage, every accepted asset is registered and attested;
- duplicates: the chain has exactly one asset per registered job (its AssetRegistered events
  name exactly the journal's registered digests), one attestation per proof the journal
  recorded; every job passed each stage once; every transaction the operator's key sent
  succeeded, and no transaction intent is left open;
- the shared store holds every asset's image and metadata (read back by a third party).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.core.requests import GenerationRequest
from agents.daemons.pipeline import DEFAULT_DAEMONS
from agents.runtime import jobs
from agents.runtime.journal import Journal
from agents.storage.cid import Cid
from agents.storage.pgstore import PostgresStore
from tests.agents.daemons.helpers import assert_chain_agrees
from tests.agents.daemons.test_crash import captions
from tests.pg_support import PostgresServer

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

KILLS = 10
WORKER = Path(__file__).with_name("host_worker.py")
FRONT = ["generator", "curator"]
BACK = ["publisher", "registrar", "prover", "settlement"]


class Host:
    """One host: a process group running some daemons, with a state folder of its own."""

    def __init__(self, name: str, folder: Path, base: dict[str, Any]) -> None:
        self.name, self.folder, self.base = name, folder, base
        self.process: subprocess.Popen[str] | None = None
        self.lives = 0

    def start(self, names: list[str], key: str) -> None:
        config = self.folder / f"life{self.lives}.json"
        settings = {**self.base, "names": names, "key": key, "worker": self.name, "state": str(self.folder)}
        config.write_text(json.dumps(settings))
        self.lives += 1
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(config)],
            stdout=subprocess.PIPE,
            stderr=(self.folder / f"life{self.lives}.log").open("w"),
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == "ready", f"{self.name} did not start: {line!r}; see {self.folder}"

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def drain(self) -> None:
        """SIGTERM: the batches in hand finish, nothing is claimed after, the process exits 0."""
        assert self.process is not None and self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=120) == 0, f"{self.name} did not drain; see {self.folder}"
        assert "drained" in self.process.stdout.read()


def test_kill_9_of_a_whole_host_at_ten_random_points_with_two_hosts_sharing_only_servers(
    chain: Any,
    accounts: Any,
    local_chain: Any,
    project: Any,
    tmp_path: Path,
    postgres: PostgresServer,
    postgres_url: str,
    redis_url: str,
):
    if chain.provider.name != "foundry":
        pytest.skip("needs a node that outlives the host processes: runs in the anvil pass (make test-anvil)")
    store_url = postgres.database()
    operator = str(accounts[0].address)
    base = {
        "rpc": chain.provider.uri,
        "circuits": {str(size): str(circuit.artifacts.root) for size, (circuit, _) in local_chain.head_models.items()},
        "addresses": local_chain.addresses,
        "t2i": local_chain.t2i_model_id,
        "heads": {str(size): model_id for size, (_, model_id) in local_chain.head_models.items()},
        "journal": postgres_url,
        "redis": redis_url,
        "store": store_url,
        "lease_s": 3.0,  # a dead host's jobs are taken over within 3 s (renewed while in hand)
        "lease_ttl_s": 2.0,  # and its sender leases within 2 s
    }
    hosts = {name: Host(name, tmp_path / name, base) for name in ("host-a", "host-b")}
    for host in hosts.values():
        host.folder.mkdir()
    prompts = captions(12 * KILLS)  # a request a kill (at most 2 * KILLS kills) and the top-ups that keep 4 in flight
    journal = Journal(postgres_url, final=jobs.REGISTERED_OR_FINAL)
    requested = 0

    def request() -> None:
        nonlocal requested
        jobs.submit_request(
            journal,
            GenerationRequest(prompt=prompts[requested], seed=700 + requested),
            requester=operator,
            source="cli",
        )
        requested += 1

    for _ in range(8):
        request()
    start_block = int(chain.blocks.height) + 1
    rng = random.Random(20261129)

    def transitions() -> int:
        return int(journal.db.execute("SELECT COUNT(*) FROM transitions").fetchone()[0])

    def in_hand(host: str) -> dict[str, int]:
        """What `host` holds right now: jobs under lease by stage, and transactions in flight
        while it leads the key."""
        rows = journal.db.execute(
            "SELECT stage, COUNT(*) FROM jobs WHERE owner LIKE ? AND lease_until > ? GROUP BY stage",
            (f"{host}/%", time.time()),
        ).fetchall()
        held = {str(stage): int(n) for stage, n in rows}
        leader = journal.db.execute(
            "SELECT owner FROM leases WHERE name = ? AND until > ?", (f"sender:{operator.lower()}", time.time())
        ).fetchone()
        pending = len(journal.open_intents(f"tx:{operator.lower()}"))
        if pending and leader is not None and leader[0] == host:
            held["transaction in flight"] = pending
        return held

    kills: list[tuple[str, dict[str, int]]] = []
    aimed_at = (jobs.PUBLISHED, jobs.GENERATED, jobs.DELIVERED, "transaction in flight", jobs.CURATED, jobs.REQUESTED)

    def kill_at_random(names: dict[str, list[str]], keys: dict[str, str]) -> bool:
        """Waits for 1 to 6 stage moves and for a host to hold work, then kills one that does
        (either, at random, when both do), adds a request, and restarts it a moment later (the
        other host works on meanwhile). Whether the victim held work when it died."""

        def keep_work_in_flight() -> None:  # so that a kill lands on some
            while sum(n for stage, n in journal.counts().items() if stage not in jobs.FINAL) < 4:
                request()

        keep_work_in_flight()
        target = transitions() + rng.randint(1, 6)
        deadline = time.monotonic() + 30
        while transitions() < target and time.monotonic() < deadline:
            keep_work_in_flight()  # the hosts may have finished everything meanwhile
            time.sleep(0.01)
        # each kill looks first (for up to 10 s: a host restarted a moment ago loads its models
        # first) for a host holding work at the next stage of a round, so the kills land across
        # the pipeline, not only where work waits longest (the prover's `delivered`)
        wanted = aimed_at[len(kills) % len(aimed_at)]
        soon = time.monotonic() + 10
        holding: list[str] = []
        while time.monotonic() < deadline:
            held = {name: in_hand(name) for name in sorted(hosts)}
            holding = [name for name, h in held.items() if h]
            aimed = [name for name, h in held.items() if wanted in h]
            if aimed or (holding and time.monotonic() > soon):
                holding = aimed or holding
                break
            keep_work_in_flight()  # the hosts may have finished everything meanwhile
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        still = [name for name in sorted(hosts) if in_hand(name)]  # work moves on in those 0.2 s
        victim = rng.choice(still or holding or sorted(hosts))
        kills.append((victim, in_hand(victim)))
        hosts[victim].kill()
        request()
        time.sleep(rng.uniform(0.0, 0.5))
        hosts[victim].start(names[victim], keys[victim])
        return bool(kills[-1][1])

    def kill_until_landed(names: dict[str, list[str]], keys: dict[str, str], wanted: int) -> None:
        """Kills until `wanted` of them landed on a host holding work: on a loaded machine a
        host restarted a moment ago may still be loading its models when the next kill comes,
        and a kill of an idle host proves less. At most twice as many kills as wanted."""
        landed = 0
        for _ in range(2 * wanted):
            landed += kill_at_random(names, keys)
            if landed == wanted:
                return

    # The generator's market watcher sends with its host's key, so a host that only generates
    # holds a key of its own (one sender per key: with the operator's, host B would stand by)
    split = {"host-a": FRONT, "host-b": BACK}
    split_keys = {"host-a": accounts[4].private_key, "host-b": accounts[0].private_key}
    for name, host in hosts.items():
        host.start(split[name], split_keys[name])
    kill_until_landed(split, split_keys, KILLS // 2)
    for host in hosts.values():  # phase two: both hosts run every stage
        host.drain()
    everything = {name: list(DEFAULT_DAEMONS) for name in hosts}
    one_key = {name: accounts[0].private_key for name in hosts}  # one leads the key, the other stands by
    for name, host in hosts.items():
        host.start(everything[name], one_key[name])
    kill_until_landed(everything, one_key, KILLS - KILLS // 2)
    hosts["host-a"].kill()  # for good: the survivor finishes the work
    deadline = time.monotonic() + 600
    while not set(journal.counts()) <= jobs.FINAL:
        assert time.monotonic() < deadline, f"the survivor did not finish: {journal.counts()}"
        time.sleep(0.1)
    hosts["host-b"].drain()

    landed: dict[str, int] = {}
    for _, held in kills:
        for stage in held:
            landed[stage] = landed.get(stage, 0) + 1
    print(f"kills: {len(kills)} ({sum(1 for v, _ in kills if v == 'host-a')} of host A); by stage: {landed}")
    assert sum(1 for _, held in kills if held) >= KILLS, kills  # ten kills with work in hand
    assert len({victim for victim, _ in kills}) == 2 and len(landed) >= 3, kills

    counts = journal.counts()
    assert set(counts) <= jobs.FINAL and sum(counts.values()) == requested, counts
    registry = project.ProvenanceRegistry.at(local_chain.addresses["ProvenanceRegistry"])
    done, sent, attest_txs = assert_chain_agrees(
        journal, registry, chain.provider.web3, sender=operator, events_from=start_block, txs_from=start_block
    )
    store = PostgresStore(store_url)  # a third party reads what the hosts stored
    for job in done:
        assert hashlib.sha256(store.read(Cid.parse(job.payload["cid"]))).hexdigest() == job.payload["sha256"]
        assert json.loads(store.read(Cid.parse(job.payload["metadata_cid"])))
    store.close()
    print(f"assets {len(done)}; operator transactions {sent}, all succeeded; attestations {attest_txs}")
    journal.close()
