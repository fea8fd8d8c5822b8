"""The prover daemon: `delivered` jobs in (registered; delivered if paid for), `attested` out, or
`unproven` after its retries.

Proofs are batched: the stage waits for as many jobs as its largest circuit takes (or `linger_s`)
and splits what it claims greedily over its circuits' sizes (a circuit of size 1 is required, so
any remainder can be proven). Each circuit is its own model version on chain (the batched graph
is what its verifier checks), so `circuits` maps a batch size to (circuit, model id).

For each chunk the curation head's circuit proves, in an executor
(a process pool in `proofmint up`: ezkl's prover never runs on the event loop), that the
registered model version scored each asset's embedding; the circuit reads each asset's proven
digest (the top 253 bits of its content digest's keccak256, `zkml.evm.proven_digest`) after its embedding and
passes it through to the proof's public instances. The proof's input commitments and proven
digests are checked against the jobs' (the `commitment` the publisher computed and the registrar
registered, the proven digest of the job's `sha256`), then one `attestInference`, naming the
assets by the registration numbers the registrar recorded (`seq`), records the scores for the
whole chunk, and the verdicts the contract derives from them with the model version's bands; the
job keeps both (`score`, `verdict`). An asset the chain already shows attested (a crash after the transaction) is moved
on without proving again.

With `validations` (an ERC-8004 agent id and the registries in the deployment), each attested
chunk is then put to proofmint's zkML validator, one request and one response per chunk
(`agents.daemons.validate`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agents.core import costs
from agents.core.reverts import WouldRevertError
from agents.daemons.validate import ProvenChunk, Validations
from agents.models.head import VERDICTS, payload_row
from agents.runtime import jobs
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.journal import Job
from agents.runtime.stage import Done, Failed, Outcome, Stage

if TYPE_CHECKING:
    from zkml.pipeline import HeadInput

REGISTRY: Final = "ProvenanceRegistry"


WORK_PREFIX: Final = "proofmint-prove-"


def prove_rows(artifacts_root: str, batch: int, embed_dim: int, rows: list[HeadInput]) -> dict[str, Any]:
    """Prove one batch with the circuit cached at `artifacts_root` (runs in a worker process),
    in a work folder named after this process; the folders of provers that died without
    removing theirs (killed mid-proof) are removed first (`sweep_abandoned`)."""
    from zkml.pipeline import Artifacts, Circuit

    sweep_abandoned(Path(tempfile.gettempdir()))
    circuit = Circuit(Artifacts(Path(artifacts_root)), batch, embed_dim)
    with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-") as work:
        return circuit.prove(rows, Path(work))


def sweep_abandoned(folder: Path) -> list[Path]:
    """Removes the work folders under `folder` that provers of this user made (named
    `proofmint-prove-PID-...`) whose process is gone; returns them. A folder whose process lives
    (or whose number another process now has), another user's, or any other name is left."""
    removed = []
    for path in folder.glob(f"{WORK_PREFIX}*-*"):
        pid = path.name.removeprefix(WORK_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # raises when no such process: the prover died
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:  # gone meanwhile, or a process of another user: not ours to judge
            continue
    return removed


def chunk_sizes(count: int, sizes: Sequence[int]) -> list[int]:
    """`count` split greedily over the available circuit sizes, largest first."""
    result: list[int] = []
    for size in sorted(set(sizes), reverse=True):
        while count >= size:
            result.append(size)
            count -= size
    return result


class ProveStage(Stage):
    name = "prover"
    origin = jobs.DELIVERED
    target = jobs.ATTESTED
    give_up = jobs.UNPROVEN

    def __init__(
        self,
        journal: Any,
        client: ChainClient,
        circuits: Mapping[int, tuple[Any, int]],
        *,
        executor: Executor | None = None,
        validations: Validations | None = None,
        **options: Any,
    ) -> None:
        if 1 not in circuits:
            raise ValueError("the prover needs a circuit of batch size 1 for remainders")
        options.setdefault("batch", max(circuits))
        super().__init__(journal, **options)
        self.client, self.circuits, self.executor = client, dict(circuits), executor
        self.validations = validations
        self.model_ids = sorted({model_id for _, model_id in circuits.values()})

    async def process(self, batch: Sequence[Job]) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        todo: list[Job] = []
        attested: list[tuple[Job, dict[str, Any]]] = []
        for job in batch:
            attestation = await self._attestation(bytes.fromhex(job.payload["sha256"]))
            if attestation is not None:  # attested by an earlier life (or another prover)
                model_id, score, verdict = attestation
                attested.append((job, {"score": score, "verdict": verdict, "attested_by": model_id}))
            else:
                todo.append(job)
        if attested:  # which transactions did it: what a prover that died after attesting did not record
            txs = await self._attesting_txs(attested)
            chunks: dict[tuple[str | None, int], list[tuple[int, Job, dict[str, Any]]]] = {}
            for job, found in attested:
                tx, position = txs.get((int(found["attested_by"]), int(job.payload["seq"])), (None, 0))
                outcomes.append(Done(job.key, {**found, "attest_tx": tx} if tx is not None else found))
                chunks.setdefault((tx, int(found["attested_by"])), []).append((position, job, found))
            if self.validations is not None:
                await self._note_recovered(list(chunks.values()))
        start = 0
        for size in chunk_sizes(len(todo), list(self.circuits)):
            outcomes += await self._prove(todo[start : start + size])
            start += size
        if self.validations is not None:
            await self.validations.drain()
        return outcomes

    async def idle_work(self) -> None:
        """Sends validations whose gathering is due (`agents.daemons.validate.Gathering`)."""
        if self.validations is not None:
            await self.validations.drain()

    async def finish(self) -> None:
        """Sends every waiting validation before the prover stops (SIGTERM), rather than leave
        it to its next life."""
        if self.validations is not None:
            await self.validations.drain(flush=True)

    async def _note_recovered(self, chunks: Sequence[Sequence[tuple[int, Job, dict[str, Any]]]]) -> None:
        """Validation intents for attested jobs no intent names (an earlier life died between
        attesting and noting them), one per attesting transaction, its assets in the order the
        transaction attested them: a whole chunk gets the request hash its first life computed."""
        assert self.validations is not None
        unnoted = await self.validations.unnoted([job.key for chunk in chunks for _, job, _ in chunk])
        for chunk in chunks:
            members = [(job, found) for _, job, found in sorted(chunk, key=lambda m: m[0]) if job.key in unnoted]
            if members:
                await self.validations.note(
                    ProvenChunk(
                        int(members[0][1]["attested_by"]),
                        [job.key for job, _ in members],
                        [bytes.fromhex(job.payload["sha256"]) for job, _ in members],
                        [str(found["verdict"]) for _, found in members],
                    )
                )

    async def _attestation(self, digest: bytes) -> tuple[int, int, str] | None:
        """(model id, score, verdict) of the asset's attestation by one of this prover's circuits."""
        for model_id in self.model_ids:
            attested, score, verdict = await self.client.read(REGISTRY, "attestationOf", digest, model_id)
            if attested:
                return model_id, int(score), VERDICTS[int(verdict)]
        return None

    async def _attesting_txs(
        self, attested: Sequence[tuple[Job, dict[str, Any]]]
    ) -> dict[tuple[int, int], tuple[str, int]]:
        """(model id, seq) -> the transaction whose `InferenceAttested` by that model version
        names the seq, and the seq's position in it: one log read per model version, from the
        earliest block among the jobs' registration transactions (each read once)."""
        blocks = [0]  # a job whose registration is not known: from the start
        if all(job.payload.get("register_tx") for job, _ in attested):
            registrations = {job.payload["register_tx"] for job, _ in attested}
            receipts = [
                await self.client.node(self.client.web3.eth.get_transaction_receipt, tx) for tx in registrations
            ]
            blocks = [int(r["blockNumber"]) if r is not None else 0 for r in receipts]
        txs: dict[tuple[int, int], tuple[str, int]] = {}
        for model_id in sorted({int(found["attested_by"]) for _, found in attested}):
            logs = await self.client.get_logs(
                REGISTRY, "InferenceAttested", from_block=min(blocks), argument_filters={"modelId": model_id}
            )
            for log in logs:
                tx = tx_hash_hex(log["transactionHash"])
                txs.update({(model_id, int(seq)): (tx, i) for i, seq in enumerate(log["args"]["seqs"])})
        return txs

    async def _prove(self, chunk: Sequence[Job]) -> list[Outcome]:
        from zkml.pipeline import HeadInput

        circuit, model_id = self.circuits[len(chunk)]
        digests = [bytes.fromhex(job.payload["sha256"]) for job in chunk]
        rows = [HeadInput(payload_row(job.payload), digest) for job, digest in zip(chunk, digests, strict=True)]
        loop = asyncio.get_running_loop()
        root = str(circuit.artifacts.root)
        started = time.perf_counter()
        proof_json = await loop.run_in_executor(self.executor, prove_rows, root, circuit.batch, circuit.embed_dim, rows)
        proof_s = time.perf_counter() - started
        calldata = circuit.calldata(proof_json)
        if calldata.commitments != [int(job.payload["commitment"], 16) for job in chunk]:
            return [
                Failed(job.key, "the proof's input commitments are not the registered ones", False) for job in chunk
            ]
        if not calldata.names(digests):
            return [Failed(job.key, "the proof's proven digests are not the jobs' digests'", False) for job in chunk]
        seqs = [int(job.payload["seq"]) for job in chunk]
        keys = [job.key for job in chunk]
        try:
            receipt = await self.client.transact(
                REGISTRY, "attestInference", model_id, seqs, calldata.proof, calldata.instances, keys=keys
            )
        except WouldRevertError as error:
            if "Attested" not in str(error):
                raise
            return []  # attested meanwhile: the next claim finds it so and moves it on
        tx = tx_hash_hex(receipt["transactionHash"])
        verdicts = {
            int(seq): VERDICTS[int(verdict)]
            for log in self.client.logs(REGISTRY, "InferenceAttested", receipt)
            for seq, verdict in zip(log["args"]["seqs"], log["args"]["verdicts"], strict=True)
        }
        if self.validations is not None:
            await self.validations.note(ProvenChunk(model_id, keys, digests, [verdicts[seq] for seq in seqs]))
        return [
            Done(
                job.key,
                {
                    "score": score,
                    "verdict": verdicts[seq],
                    "attested_by": model_id,
                    "attest_tx": tx,
                    "proof_size": len(chunk),
                    costs.PROVE: costs.transaction_share(
                        receipt, tx, len(chunk), proof_s=round(proof_s / len(chunk), 6), device="cpu"
                    ),
                },
            )
            for job, score, seq in zip(chunk, calldata.scores, seqs, strict=True)
        ]
