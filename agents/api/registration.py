"""What the API says about the operator's ERC-8004 agents: each agent's registration file (the
document its on-chain `agentURI` resolves to), the endpoint-domain file served at
`/.well-known/agent-registration.json`, and the record a validation response points at.

The registration file follows the specification's `registration-v1` shape: name, description,
image, services (this API's endpoints), `x402Support`, `active`, `registrations` (agentId and
`eip155:{chainId}:{identityRegistry}`) and `supportedTrust` (reputation, and zkML validation for
the agent whose proofs the validator answers from)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.core.validation import TAG, ValidationDomain
from agents.deploy.erc8004 import REGISTRATION_TYPE, ROLES, VALIDATION, VALIDATOR, AgentDirectory
from agents.runtime.chain import ChainClient, tx_hash_hex
from agents.runtime.retry import is_revert

TRUST: Mapping[str, tuple[str, ...]] = {
    "generator": ("reputation",),
    "prover": ("reputation", "zkml"),
    "settlement": ("reputation",),
}
"""The trust models each agent offers: clients' feedback for all (counted only from paying
clients), and zkML validation of the prover's work through proofmint's validator."""


def registrations(directory: AgentDirectory) -> list[dict[str, Any]]:
    """Every agent of the directory as the specification's `registrations` entries."""
    registry = directory.registries.agent_registry
    return [{"agentId": agent_id, "agentRegistry": registry} for agent_id in directory.ids.values()]


def services(public_url: str, *, x402: bool) -> list[dict[str, Any]]:
    """This API's endpoints as registration-file services."""
    base = public_url.rstrip("/")
    listed: list[dict[str, Any]] = [
        {"name": "web", "endpoint": f"{base}/app/"},
        {"name": "OpenAPI", "endpoint": f"{base}/openapi.json", "version": "3.1.0"},
    ]
    if x402:
        listed.append({"name": "x402", "endpoint": f"{base}/v1/x402/supported", "version": "2"})
    return listed


def registration_file(directory: AgentDirectory, role: str, *, x402: bool) -> dict[str, Any]:
    """`role`'s registration file (`role` must be one of `ROLES`)."""
    agent_id = directory.ids[role]
    base = directory.public_url.rstrip("/")
    document: dict[str, Any] = {
        "type": REGISTRATION_TYPE,
        "name": f"proofmint {role}",
        "description": ROLES[role],
        "image": f"{base}/app/",
        "services": services(base, x402=x402),
        "x402Support": x402,
        "active": True,
        "registrations": [{"agentId": agent_id, "agentRegistry": directory.registries.agent_registry}],
        "supportedTrust": list(TRUST[role]),
    }
    if role == "prover" and directory.registries.validator is not None:
        document["validation"] = {
            "validator": directory.registries.validator,
            "validationRegistry": directory.registries.validation,
            "tag": TAG,
            "records": f"{base}/v1/validations/",
        }
    return document


def well_known(directory: AgentDirectory, *, x402: bool) -> dict[str, Any]:
    """The endpoint-domain file: this API's services and every agent it serves, so a client can
    check that the domain is the agents' (the specification's endpoint domain verification)."""
    return {
        "type": REGISTRATION_TYPE,
        "name": "proofmint",
        "description": "Provenance, licensing and royalty splits for AI-generated images: "
        + " ".join(f"{role}: {text}" for role, text in ROLES.items()),
        "image": f"{directory.public_url.rstrip('/')}/app/",
        "services": services(directory.public_url, x402=x402),
        "x402Support": x402,
        "active": True,
        "registrations": registrations(directory),
        "supportedTrust": sorted({trust for role in directory.ids for trust in TRUST[role]}),
    }


async def validation_record(client: ChainClient, chain_id: int, request_hash: bytes) -> dict[str, Any] | None:
    """What `/v1/validations/{hash}` shows: the request's state in the Validation Registry and,
    once answered, the covered assets with each one's Merkle proof (for
    `ZkmlValidator.itemResponse`), attestation and `proofmint verify` command. None for a
    request this deployment's validator was never asked."""
    if VALIDATOR not in client.contracts or VALIDATION not in client.contracts:
        return None
    validator = client.contract(VALIDATOR)
    try:
        status = await client.call(VALIDATION, "getValidationStatus", request_hash)
    except Exception as error:
        if is_revert(error):  # ValidationRegistry__UnknownRequest
            return None
        raise
    if str(status[0]).lower() != str(validator.address).lower():
        return None
    answered, response, count, model_id, root, revoked = await client.call(VALIDATOR, "answerOf", request_hash)
    record: dict[str, Any] = {
        "requestHash": "0x" + request_hash.hex(),
        "validator": validator.address,
        "agentId": int(status[1]),
        "state": ("revoked" if revoked else "answered") if answered else "requested",
        "lastUpdate": int(status[5]),
    }
    if not answered:
        return record
    record.update({"response": int(response), "tag": TAG, "modelId": int(model_id), "count": int(count)})
    # the assets, as the answer's own event lists them (whoever sent it, however it was called)
    logs = await client.get_logs(VALIDATOR, "Answered", from_block=0, argument_filters={"requestHash": request_hash})
    if not logs:
        return record
    assets = [bytes(a) for a in logs[0]["args"]["assets"]]
    domain = ValidationDomain(chain_id, str(validator.address), str(client.contract("ProvenanceRegistry").address))
    batch = domain.batch(int(model_id), assets)  # its root is `root`: respond checked the assets against it
    items = []
    for index, asset in enumerate(assets):
        attested, score, verdict = await client.call("ProvenanceRegistry", "attestationOf", asset, int(model_id))
        items.append(
            {
                "asset": "0x" + asset.hex(),
                "index": index,
                "proof": ["0x" + node.hex() for node in batch.proof(index)],
                "attestation": {"attested": bool(attested), "score": int(score), "verdict": int(verdict)},
                "verify": f"proofmint verify 0x{asset.hex()}",
            }
        )
    record.update(
        {
            "root": "0x" + bytes(root).hex(),
            "responseHash": "0x" + batch.response_hash().hex(),
            "responseTx": tx_hash_hex(logs[0]["transactionHash"]),
            "items": items,
        }
    )
    return record
