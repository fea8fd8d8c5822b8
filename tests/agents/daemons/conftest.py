"""What the pipeline tests share: the shipped models loaded once, the curation head's circuits
(batch 2 and 1, cached under .cache/zkml-agents), and a fresh deployment per test (ape's
isolation reverts the chain after each test, so the journal is fresh per test too)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.daemons.local import Parts, build_head_circuits, open_parts, prepare_chain
from agents.storage.store import LocalStore
from agents.toolchain import project_root, solc_executable

HEAD_SIZES = (2, 1)


@pytest.fixture(scope="session")
def head_circuits() -> dict[int, Any]:
    return build_head_circuits(project_root() / ".cache" / "zkml-agents", HEAD_SIZES)


@pytest.fixture
def local_chain(project: Any, chain: Any, accounts: Any, head_circuits: dict[int, Any], tmp_path: Path) -> Any:
    root = project_root()
    return prepare_chain(
        project,
        chain,
        operator=accounts[0],
        developer=accounts[1],
        originators=[(str(accounts[2].address), 600_000), (str(accounts[3].address), 400_000)],
        t2i_folder=root / "models" / "tiny-t2i",
        circuits=head_circuits,
        store=LocalStore(tmp_path / "state" / "store"),
        solc=solc_executable(root),
    )


@pytest.fixture
def parts(local_chain: Any, chain: Any, accounts: Any, tmp_path: Path) -> Iterator[Parts]:
    opened = asyncio.run(
        open_parts(
            project_root(),
            tmp_path / "state",
            web3=chain.provider.web3,
            key=accounts[0].private_key,
            addresses=local_chain.addresses,
            t2i_model_id=local_chain.t2i_model_id,
            head_models=local_chain.head_models,
            sender_poll=0.02,
            agent_threads=None,  # torch's setting is process-wide: leave the other tests theirs
        )
    )
    yield opened
    opened.close()
