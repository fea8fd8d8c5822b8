"""What the pipeline tests share: the shipped models loaded once per session, the trained curation
head's circuits (batch 2 and 1, cached under .cache/zkml-agents), and one deployment per test
module, with the operator's ERC-8004 agents (the prover's proven chunks are validated). ape's
isolation snapshots the chain after the module's deployment and reverts it after each test, and
each test's parts open a fresh journal and content store under its own `tmp_path`, so no test
sees another's state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.app.wiring import Models, Parts, build_head_circuits, load_models, open_parts, prepare_chain
from agents.core.toolchain import project_root, solc_executable
from agents.daemons.validate import ValidationTarget
from agents.models.head import HEAD_FOLDER, HeadModel
from agents.models.upscaler import DEFAULT_UPSCALER
from agents.storage.store import LocalStore

HEAD_SIZES = (2, 1)
PUBLIC_URL = "http://127.0.0.1:8080"
"""Where the agents' registration files and validation records would be served (no API here)."""


@pytest.fixture(scope="session")
def head_circuits() -> dict[int, Any]:
    """The shipped (trained) curation head's circuits: what the curator decides with is proven."""
    return build_head_circuits(project_root() / ".cache" / "zkml-agents", project_root() / HEAD_FOLDER, HEAD_SIZES)


@pytest.fixture(scope="session")
def curation_head() -> HeadModel:
    return HeadModel.load(project_root() / HEAD_FOLDER)


@pytest.fixture(scope="session")
def models() -> Iterator[Models]:
    """The generator's worker processes and the curator, loaded once for every test that runs
    the daemons (torch's thread setting is process-wide: the other tests keep theirs)."""
    loaded = asyncio.run(load_models(project_root(), agent_threads=None))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def local_chain(
    project: Any,
    chain: Any,
    accounts: Any,
    head_circuits: dict[int, Any],
    curation_head: HeadModel,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    root = project_root()
    return prepare_chain(
        project,
        chain,
        operator=accounts[0],
        developer=accounts[1],
        originators=[(str(accounts[2].address), 600_000), (str(accounts[3].address), 400_000)],
        t2i_folder=root / "models" / "tiny-t2i",
        circuits=head_circuits,
        bands=(curation_head.accept_fixed, curation_head.review_fixed),
        store=LocalStore(tmp_path_factory.mktemp("setup") / "store"),
        solc=solc_executable(root),
        dev_holders=[str(a.address) for a in list(accounts)[:10]],
        public_url=PUBLIC_URL,
        upscaler_folder=root / DEFAULT_UPSCALER,
    )


def open_test_parts(local_chain: Any, chain: Any, accounts: Any, models: Models, state: Path, **more: Any) -> Parts:
    """The operator's parts on the module's deployment, with the session's models (`more`: other
    `open_parts` options, e.g. the daemons they are for)."""
    return asyncio.run(
        open_parts(
            project_root(),
            state,
            web3=chain.provider.web3,
            key=accounts[0].private_key,
            addresses=local_chain.addresses,
            t2i_model_id=local_chain.t2i_model_id,
            head_models=local_chain.head_models,
            sender_poll=0.02,
            models=models,
            **more,
        )
    )


@pytest.fixture
def parts(local_chain: Any, chain: Any, accounts: Any, models: Models, tmp_path: Path) -> Iterator[Parts]:
    validation = ValidationTarget(local_chain.agents.ids["prover"], PUBLIC_URL, int(chain.chain_id))
    opened = open_test_parts(local_chain, chain, accounts, models, tmp_path / "state", validation=validation)
    yield opened
    opened.close()
