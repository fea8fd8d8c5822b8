"""`ape run register_asset` (scripts/register_asset.py) against a real anvil: a licensee registers
a derivative of two parents (the chain records creator, parents, royalty shares, the metadata
URI, and consumes a unit of each licence; the stored parameters document hashes to
`paramsDigest`), and the contract's own rules refuse, by name and with nothing stored, a stranger
with the licensee's public licence id, a licence of another asset and terms that allow no
derivatives. The parents, terms and licences are set up with web3.py; `ape run` is only the
command under test."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.storage.cid import Cid
from agents.storage.store import LocalStore
from tests.scripts.helpers import ETH, Anvil, ape_run, contract, key_of, one_line_error, register_asset, send

pytestmark = [pytest.mark.slow, pytest.mark.anvil]  # a node of their own: with the anvil pass

CREATOR, LICENSEE, STRANGER = 3, 6, 7
PERPETUAL = 2**64 - 1
IMAGE = b"\x89PNG\r\n\x1a\n a derivative of two parents, made by test:6"


@dataclass(frozen=True)
class Lineage:
    """Assets of test:3 and the licences test:6 holds on them."""

    parents: tuple[bytes, bytes]
    licences: tuple[int, int]
    """Licences of `parents` (derivatives allowed, 250 and 400 bps to the parent)."""
    other: bytes
    """An asset with no licence of the licensee's."""
    closed: bytes
    closed_licence: int
    """A licence of `closed` under terms that allow no derivatives."""


def buy_licence(node: Anvil, project: Any, asset: bytes, *, derivatives: bool, bps: int) -> int:
    """Terms of test:3 on `asset` (free, perpetual) and one licence under them for test:6; its id."""
    licenses = contract(node, project, "LicenseManager")
    send(node, CREATOR, licenses.functions.attachTerms(asset, (ETH, 0, 0, 0, bps, True, derivatives)))
    terms_id = int(licenses.functions.termsCount().call())
    send(node, LICENSEE, licenses.functions.purchase(terms_id, key_of(LICENSEE).address))
    return (terms_id << 64) | PERPETUAL


@pytest.fixture(scope="module")
def lineage(deployed: Anvil, project: Any) -> Lineage:
    first, second, other, closed = (
        register_asset(deployed, project, CREATOR, bytes([b]) * 32) for b in b"\xd1\xd2\xd3\xd4"
    )
    return Lineage(
        parents=(first, second),
        licences=(
            buy_licence(deployed, project, first, derivatives=True, bps=250),
            buy_licence(deployed, project, second, derivatives=True, bps=400),
        ),
        other=other,
        closed=closed,
        closed_licence=buy_licence(deployed, project, closed, derivatives=False, bps=0),
    )


def hex32(digest: bytes) -> str:
    return "0x" + digest.hex()


def shown(out: str, label: str) -> str:
    """The first word after `label` on the line it starts."""
    return next(line for line in out.splitlines() if line.startswith(label)).split()[1]


def test_a_licensee_registers_a_derivative_of_two_parents(
    deployed: Anvil, project: Any, lineage: Lineage, tmp_path: Path
):
    registry = contract(deployed, project, "ProvenanceRegistry")
    licenses = contract(deployed, project, "LicenseManager")
    licensee = key_of(LICENSEE).address
    image = tmp_path / "derivative.png"
    image.write_bytes(IMAGE)
    store = tmp_path / "store"
    digest = hashlib.sha256(IMAGE).digest()
    (first, second), (licence1, licence2) = lineage.parents, lineage.licences
    # parents in descending order, one repeated option and one comma-separated: registered ascending
    args = ["--file", str(image), "--parents", hex32(second), "--parents", hex32(first)]
    args += ["--licenses", f"{licence2},{licence1}", "--account", f"test:{LICENSEE}", "--store", str(store)]

    dry = ape_run(deployed, "register_asset", *args, "--dry-run").stdout
    assert "dry run   register would succeed; nothing sent or stored" in dry
    assert f"asset     {hex32(digest)} (token id {int.from_bytes(digest, 'big')})" in dry
    assert "model     1 (the first parent's)" in dry
    assert not store.exists() and not registry.functions.exists(digest).call()

    out = ape_run(deployed, "register_asset", *args, "--title", "two circles, pinker").stdout
    assert out.index(f"parent    {hex32(first)} under licence {licence1}") < out.index(f"parent    {hex32(second)}")
    assert f"royalty   parent {hex32(first)}: 250 bps (2.5%) of the derivative's revenue" in out
    assert f"royalty   parent {hex32(second)}: 400 bps (4%) of the derivative's revenue" in out
    assert shown(out, "tx").startswith("0x")
    creator, model_id, depth, parent_count, *_, params_digest, _binding = registry.functions.getAsset(digest).call()
    assert (creator, model_id, depth, parent_count) == (licensee, 1, 1, 2)
    parents, shares = registry.functions.parentsOf(digest).call()
    assert (parents, shares) == ([first, second], [250, 400])
    assert [licenses.functions.balanceOf(licensee, i).call() for i in lineage.licences] == [0, 0], "units consumed"
    metadata_cid = shown(out, "metadata")
    assert registry.functions.tokenURI(int.from_bytes(digest, "big")).call() == f"ipfs://{metadata_cid}"
    # the stored files: the parameters document is the pre-image of paramsDigest, the metadata names both
    stored = LocalStore(store)
    params = stored.read(Cid.parse(shown(out, "params")))
    assert hashlib.sha256(params).digest() == params_digest
    assert json.loads(params)["licenseIds"] == [str(licence1), str(licence2)]
    metadata = json.loads(stored.read(Cid.parse(metadata_cid)))
    assert metadata["name"] == "two circles, pinker"
    assert metadata["image"] == f"ipfs://{shown(out, 'image')}"
    assert stored.read(Cid.parse(shown(out, "image"))) == IMAGE

    again = one_line_error(ape_run(deployed, "register_asset", *args, check=False))
    assert f"ProvenanceRegistry__AlreadyRegistered(contentDigest={hex32(digest)})" in again


def test_the_registry_refuses_by_name_and_nothing_is_stored(
    deployed: Anvil, project: Any, lineage: Lineage, tmp_path: Path
):
    image = tmp_path / "mine.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n made by whoever runs the test")
    store = tmp_path / "store"
    licence = lineage.licences[0]

    def refused(parent: bytes, licence_id: int, account: int, model: str = "1") -> str:
        args = ["--file", str(image), "--parents", hex32(parent), "--licenses", str(licence_id), "--model-id", model]
        line = one_line_error(
            ape_run(
                deployed, "register_asset", *args, "--account", f"test:{account}", "--store", str(store), check=False
            )
        )
        assert line.startswith("Error: the registry would refuse this derivative: ") and line.endswith(
            "; nothing sent or stored"
        ), line
        assert not store.exists(), "nothing stored for a refused derivative"
        return line

    # the squatter: the licensee's licence id is public, but the stranger does not hold it
    stranger = key_of(STRANGER).address.lower()
    line = refused(lineage.parents[0], licence, STRANGER)
    assert f"LicenseManager__NoLicense(holder={stranger}, licenseId={licence})" in line
    line = refused(lineage.other, licence, LICENSEE)
    assert f"LicenseManager__LicenseNotForAsset(licenseId={licence}, parent={hex32(lineage.other)})" in line
    line = refused(lineage.closed, lineage.closed_licence, LICENSEE)
    assert f"LicenseManager__DerivativesNotAllowed(licenseId={lineage.closed_licence})" in line
    line = refused(lineage.parents[0], licence, LICENSEE, model="9")
    assert "ProvenanceRegistry__ModelNotActive(modelId=9)" in line


def test_bad_input_is_one_line_saying_what_to_fix(deployed: Anvil, lineage: Lineage, tmp_path: Path):
    image = tmp_path / "image.png"
    image.write_bytes(b"pixels")
    parent, licence = hex32(lineage.parents[0]), str(lineage.licences[0])
    cases = [
        (["--file", str(tmp_path / "none.png"), "--parents", parent, "--licenses", licence], "No such file"),
        (
            ["--file", str(image), "--parents", f"{parent},{hex32(lineage.other)}", "--licenses", licence],
            "--parents and --licenses: one licence per parent, in the same order; got 2 parents and 1 licence",
        ),
        (
            ["--file", str(image), "--parents", "0x1234", "--licenses", licence],
            "--parents item 1: expected 32 bytes as 64 hex digits (0x optional), got '0x1234'",
        ),
        (
            ["--file", str(image), "--parents", "ee" * 32, "--licenses", "0x" + "ff" * 33],
            "--licenses item 1: expected a licence token id (decimal, as `ape run license buy` prints it, or 0x hex)",
        ),
        (
            ["--file", str(image), "--parents", "ee" * 32, "--licenses", licence],
            "cannot read the first parent's model version (check the digest, or give --model-id): "
            f"ProvenanceRegistry.getAsset(0x{'ee' * 32}) reverted: ProvenanceRegistry__UnknownAsset(",
        ),
    ]
    for args, expected in cases:
        line = one_line_error(ape_run(deployed, "register_asset", *args, check=False))
        assert expected in line, (args, line)
