"""`proofmint verify` without a chain: what it takes as a target, how it reads content (a store
and a CAR file as they lie, a UnixFS DAG of several blocks, a tampered block reported rather than
refused), how it renders a report, and the one-line errors for input it cannot use (exit status
2). The audit of real assets is tests/agents/daemons/test_verify_e2e.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.app.audit import (
    AuditError,
    CarSource,
    Fact,
    Report,
    Sources,
    Status,
    StoreSource,
    car_blocks,
    cid_of,
    ipfs_cid,
    names,
    parse_target,
    proof_file,
    published_head_input,
)
from agents.app.main import cli
from agents.app.verify_cli import render
from agents.storage.car import write_car
from agents.storage.cid import DAG_PB, RAW, Cid
from agents.storage.store import LocalStore
from agents.storage.unixfs import CHUNK_SIZE
from zkml.pipeline import HeadInput, input_commitment, quantized, quantized_commitment

DIGEST = "0x" + "ab" * 32


def test_a_target_is_a_digest_with_or_without_0x_or_a_cid():
    assert parse_target(DIGEST) == bytes.fromhex("ab" * 32) == parse_target("AB" * 32)
    cid = cid_of(b"an image")
    assert parse_target(str(cid)) == cid and cid.codec == RAW and cid.digest == hashlib.sha256(b"an image").digest()
    assert parse_target(str(cid_of(b"an image", 0))) == cid_of(b"an image", 0)


@pytest.mark.parametrize("text", ["", "0x1234", "0x" + "ab" * 33, "not a cid", "bafy" + "!" * 20, "Qm" + "1" * 10])
def test_anything_else_is_refused_saying_what_to_give(text: str):
    with pytest.raises(AuditError, match="neither a content digest"):
        parse_target(text)


def test_ipfs_uris_name_their_cid_and_nothing_else_does():
    cid = cid_of(b"x")
    assert ipfs_cid(f"ipfs://{cid}") == cid and ipfs_cid(f"ipfs://{cid}/meta.json") == cid
    assert ipfs_cid(f"https://ipfs.io/ipfs/{cid}") is None and ipfs_cid("ipfs://nope") is None and ipfs_cid(7) is None


def test_a_file_of_several_blocks_is_read_from_the_store_and_a_tampered_leaf_is_reported(tmp_path: Path):
    data = os.urandom(2 * CHUNK_SIZE + 100)
    store = LocalStore(tmp_path / "store")
    root = store.add_bytes(data)
    assert root.codec == DAG_PB
    fetched = asyncio.run(Sources([StoreSource(store)]).fetch(root))
    assert fetched is not None and fetched.data == data and fetched.intact and fetched.source.startswith("store ")
    leaf = cid_of(data[:CHUNK_SIZE])  # the first chunk, a raw leaf of the DAG
    path = store.root / "blocks" / leaf.digest.hex()[:2] / leaf.digest.hex()
    path.write_bytes(b"\x00" + path.read_bytes()[1:])
    fetched = asyncio.run(Sources([StoreSource(store)]).fetch(root))
    assert fetched is not None and fetched.data[0] == 0 and not fetched.intact  # served as it lies, judged
    assert asyncio.run(Sources([StoreSource(store)]).fetch(cid_of(b"absent"))) is None


def test_a_car_file_serves_its_blocks_unchecked_and_a_later_source_is_not_asked(tmp_path: Path):
    image, other = b"\x89PNG the image", b"the metadata"
    image_cid, other_cid = cid_of(image), cid_of(other)
    car = tmp_path / "files.car"
    with car.open("wb") as out:
        write_car(image_cid, iter([(image_cid, b"\x89PNG the imagX"), (other_cid, other)]), out)
    assert set(car_blocks(car.read_bytes())) == {image_cid.digest, other_cid.digest}
    store = LocalStore(tmp_path / "store")
    store.add_bytes(image)
    sources = Sources([CarSource(car), StoreSource(store)])
    first = asyncio.run(sources.fetch(image_cid))
    assert first is not None and first.data.endswith(b"X") and not first.intact and first.source.startswith("CAR ")
    second = asyncio.run(sources.fetch(other_cid))
    assert second is not None and second.intact and second.data == other


def test_a_file_that_is_no_car_v1_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.car"
    bad.write_bytes(b"\x0bhello world")
    with pytest.raises(AuditError, match="not a CAR v1"):
        CarSource(bad)


def test_names_checks_raw_blocks_by_sha256_and_dags_by_their_layout():
    small, big = b"small", os.urandom(CHUNK_SIZE + 1)
    assert names(cid_of(small), small) and not names(cid_of(small), small + b"!")
    assert names(cid_of(big), big) and names(cid_of(big, 0), big) and not names(cid_of(big), big[:-1])
    assert names(Cid(1, RAW, hashlib.sha256(big).digest()), big)  # a raw CID of a block of any size


def test_a_proof_file_holds_the_instances_little_endian_as_ezkl_writes_them():
    written = proof_file(b"\x01\x02", [1, 2**200])
    assert written["proof"] == [1, 2] and written["hex_proof"] == "0x0102"
    assert written["instances"] == [[(1).to_bytes(32, "little").hex(), (2**200).to_bytes(32, "little").hex()]]


def report(*statuses: Status) -> Report:
    made = Report(DIGEST, bytes.fromhex("ab" * 32), 31337, "0x" + "12" * 20, {"seq": 4, "modelId": 1, "creator": "0xC"})
    made.facts = [
        Fact(name, status, f"why {name}") for name, status in zip(("digest", "proof", "c2pa"), statuses, strict=True)
    ]
    return made


def test_the_report_names_the_failed_facts_and_strict_counts_skipped_ones():
    passing = report(Status.OK, Status.OK, Status.SKIPPED)
    assert passing.ok() and not passing.ok(strict=True) and [f.name for f in passing.failed(strict=True)] == ["c2pa"]
    text = render(passing, strict=False).splitlines()
    assert text[0].startswith(f"asset {DIGEST} (#4, model version 1") and "chain 31337" in text[0]
    assert text[1:4] == ["ok    digest  why digest", "ok    proof   why proof", "skip  c2pa    why c2pa"]
    assert text[-1] == "verified: every fact that applies holds (2 ok, 0 failed, 1 skipped)"
    failing = report(Status.FAIL, Status.OK, Status.FAIL)
    assert render(failing, strict=False).splitlines()[-1] == "NOT VERIFIED: digest, c2pa (1 ok, 2 failed, 0 skipped)"
    answer = failing.as_json()
    assert answer["ok"] is False and answer["failed"] == ["digest", "c2pa"]
    assert answer["facts"][0] == {"name": "digest", "status": "fail", "detail": "why digest"}
    json.dumps(answer)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(mix_stderr=False).invoke(cli, ["verify", *args])
    return result.exit_code, result.stderr


def record(tmp_path: Path) -> Path:
    names_ = ("ModelRegistry", "ProvenanceRegistry", "LicenseManager", "RoyaltySplitter")
    contracts = [{"name": n, "address": "0x" + f"{i + 1:040x}", "block_number": 0} for i, n in enumerate(names_)]
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"network": "x", "chainId": 1, "contracts": contracts}))
    return path


def test_bad_input_is_one_line_with_exit_status_2(tmp_path: Path):
    code, err = run("not-a-digest")
    assert code == 2 and "is neither a content digest" in err and len(err.strip().splitlines()) == 1
    code, err = run(DIGEST, "--rpc", "http://127.0.0.1:9")
    assert code == 2 and "no deployment recorded for http://127.0.0.1:9" in err
    code, err = run(DIGEST, "--rpc", "http://127.0.0.1:9", "--deployment", str(record(tmp_path)))
    assert code == 2 and "cannot reach a node at http://127.0.0.1:9" in err and err.count("\n") == 1
    code, err = run(DIGEST, "--proof-tx", "0x12")
    assert code == 2 and "is not a transaction hash" in err
    code, err = run(DIGEST, "--deployment", str(tmp_path / "missing.json"))
    assert code == 2 and "does not exist" in err


def _row(seed: int) -> list[float]:
    import random

    rng = random.Random(seed)
    return [rng.uniform(-0.4, 0.4) for _ in range(64)]


def test_a_published_head_input_equal_to_the_recomputed_row_commits_as_the_floats_do():
    row, digest = _row(1), hashlib.sha256(b"asset").digest()
    published = {"inputScale": 13, "values": quantized(row, 13)}
    checked = published_head_input(published, row, 13, digest)
    assert checked.moved == 0
    assert (
        checked.commitment
        == input_commitment(HeadInput(row, digest), 13)
        == quantized_commitment(published["values"], digest)
    )
    assert published_head_input(published, row, 13, bytes(32)).commitment != checked.commitment  # the digest counts


def test_a_value_within_float_rounding_of_a_step_may_be_published_rounded_the_other_way():
    """A value that near a rounding step (batch against single image, another CPU) may quantize to
    the neighbouring integer: the published row still stands, and its commitment is the published
    integers', not the recomputed ones'. A value not that near may not move."""
    row, digest = _row(2), hashlib.sha256(b"asset").digest()
    row[5] = (1000 + 0.5 + 0.004) / 8192  # rounds to 1001 here; 1000 where float rounding fell the other way
    row[40] = (-700 - 0.5 - 0.004) / 8192  # rounds to -701 here
    values = quantized(row, 13)
    assert (values[5], values[40]) == (1001, -701)
    values[5], values[40] = 1000, -700
    checked = published_head_input({"inputScale": 13, "values": values}, row, 13, digest)
    assert checked.moved == 2
    assert checked.commitment == quantized_commitment(values, digest) != input_commitment(HeadInput(row, digest), 13)
    far = quantized(row, 13)
    far[6] += 1  # a value a third of a unit or more from its step: not float rounding
    assert abs(row[6] * 8192 - round(row[6] * 8192)) < 0.49
    with pytest.raises(AuditError, match="value 6 of the metadata's head input"):
        published_head_input({"inputScale": 13, "values": far}, row, 13, digest)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p: p["values"].__setitem__(7, p["values"][7] + 2), "value 7 of the metadata's head input"),
        (lambda p: p["values"].reverse(), "the published input is not these bytes' embedding"),
        (lambda p: p.__setitem__("inputScale", 12), "at scale 12, the circuit's input scale is 13"),
        (lambda p: p.__setitem__("inputScale", "13"), "at scale '13'"),
        (lambda p: p["values"].pop(), "has 63 values, the head row 64"),
        (lambda p: p["values"].__setitem__(0, 1.0), "not a list of integers"),
        (lambda p: p["values"].__setitem__(0, True), "not a list of integers"),
        (lambda p: p.__setitem__("values", "1,2"), "not a list of integers"),
        (lambda p: p.__setitem__("extra", 1), "is not {inputScale, values}"),
        (lambda p: p.pop("values"), "is not {inputScale, values}"),
    ],
)
def test_a_published_head_input_that_is_not_these_bytes_row_is_refused_saying_why(change, says):  # type: ignore[no-untyped-def]
    row = _row(3)
    published = {"inputScale": 13, "values": quantized(row, 13)}
    change(published)
    with pytest.raises(AuditError) as caught:
        published_head_input(published, row, 13, bytes(32))
    assert says in str(caught.value)
    with pytest.raises(AuditError):
        published_head_input([1, 2], row, 13, bytes(32))
