"""The daemons' pure parts and command lines: request keys, job payloads, proof chunking, PNG
sizes, `proofmint request` and the refusals of `proofmint agent` (no chain needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agents.app.main import cli
from agents.core.requests import GenerationRequest, GeneratorError
from agents.daemons.prove import WORK_PREFIX, chunk_sizes, sweep_abandoned
from agents.daemons.publish import PublishError, png_size
from agents.models.generator import png_bytes
from agents.runtime import jobs
from agents.runtime.journal import Journal


def test_the_same_request_is_one_job_and_any_change_is_another(tmp_path: Path):
    journal = Journal(tmp_path / "j.db", final=jobs.FINAL)
    request = GenerationRequest(prompt="a red circle", seed=1)
    key, new = jobs.submit_request(journal, request, requester="0xAbC", source="cli")
    again, new_again = jobs.submit_request(journal, request, requester="0xabc", source="api")
    assert (key, new) == (again, True) and new_again is False  # requester case does not matter
    others = {
        jobs.request_key(GenerationRequest(prompt="a red circle", seed=2), "0xabc"),
        jobs.request_key(GenerationRequest(prompt="a red circle", seed=1, steps=24), "0xabc"),
        jobs.request_key(request, "0xdef"),
    }
    assert key not in others and len(others) == 3
    job = journal.get(key)
    assert job is not None and job.stage == jobs.REQUESTED and job.deadline is not None
    assert jobs.request_of(job.payload) == request
    journal.close()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"request": "a prompt"},
        {"request": {"prompt": "x"}},
        {"request": {"prompt": " ", "seed": 1}},
        {"request": {"prompt": "x", "seed": -1}},
        {"request": {"prompt": "x", "seed": 1, "colour": "red"}},
        {"request": {"prompt": "bad \ud800", "seed": 1}},  # journaled by a version that took anything
        {"request": {"prompt": "ok", "negative_prompt": "a\x1bb", "seed": 1}},
    ],
)
def test_a_malformed_job_payload_is_a_generator_error(payload: dict[str, object]):
    with pytest.raises(GeneratorError):
        jobs.request_of(payload)


@pytest.mark.parametrize(
    ("count", "sizes", "expected"),
    [
        (0, [4, 1], []),
        (1, [4, 1], [1]),
        (4, [4, 1], [4]),
        (7, [4, 1], [4, 1, 1, 1]),
        (9, [1, 2, 4], [4, 4, 1]),
        (5, [2, 2, 1], [2, 2, 1]),
    ],
)
def test_proofs_are_chunked_largest_circuit_first(count: int, sizes: list[int], expected: list[int]):
    assert chunk_sizes(count, sizes) == expected


def test_work_folders_of_provers_that_died_are_swept_and_nothing_else(tmp_path: Path):
    """A prover killed mid-proof (kill -9, a lost host) leaves its work folder (input, witness,
    proof files); the next proof removes the folders whose prover process is gone, and only
    those: a live prover's, an unnumbered one, and anything not named as a prover's stay."""
    import os
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a process number no process has now
    dead = tmp_path / f"{WORK_PREFIX}{ended.pid}-abc123"
    live = tmp_path / f"{WORK_PREFIX}{os.getppid()}-def456"
    mine = tmp_path / f"{WORK_PREFIX}{os.getpid()}-ghi789"
    unnumbered = tmp_path / f"{WORK_PREFIX}x1y2z3"
    other = tmp_path / f"another-{ended.pid}-abc"
    for folder in (dead, live, mine, unnumbered, other):
        folder.mkdir()
        (folder / "witness.json").write_text("{}")
    assert sweep_abandoned(tmp_path) == [dead]
    assert not dead.exists()
    assert all(folder.is_dir() for folder in (live, mine, unnumbered, other))
    assert sweep_abandoned(tmp_path) == []


def test_png_size_reads_the_header_and_refuses_other_bytes():
    from PIL import Image

    assert png_size(png_bytes(Image.new("RGB", (40, 24)))) == (40, 24)
    for bad in (b"", b"GIF89a" + b"\x00" * 30, png_bytes(Image.new("RGB", (8, 8)))[:20]):
        with pytest.raises(PublishError):
            png_size(bad)


def test_proofmint_request_journals_once(tmp_path: Path):
    runner = CliRunner()
    args = ["request", "two blue squares", "--seed", "5", "--state", str(tmp_path)]
    first = runner.invoke(cli, args)
    second = runner.invoke(cli, args)
    assert first.exit_code == 0 and "queued (at requested)" in first.output
    assert second.exit_code == 0 and "already journaled" in second.output
    assert first.output.split()[0] == second.output.split()[0]
    bad = runner.invoke(cli, ["request", "x", "--seed", "-3", "--state", str(tmp_path)])
    assert bad.exit_code == 2 and "seed" in bad.output.lower()
    # $'bad \xff' reaches Python as a surrogate escape; a NUL or an escape sequence is no prompt either
    for text, why in (("bad \udcff", "not valid UTF-8: byte 0xff"), ("a\x00b", "control character")):
        refused = runner.invoke(cli, ["request", text, "--state", str(tmp_path / "other")])
        assert refused.exit_code == 2 and why in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "other").exists()  # nothing journaled, not even a journal made


def test_proofmint_agent_refuses_what_it_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    record = tmp_path / "deployment.json"
    record.write_text("{}")
    runner = CliRunner()
    monkeypatch.delenv("PROOFMINT_AGENT_KEY", raising=False)
    no_key = runner.invoke(cli, ["agent", "registrar", "--deployment", str(record), "--model-id", "1"])
    assert no_key.exit_code != 0 and "PROOFMINT_AGENT_KEY" in str(no_key.exception or no_key.output)
    monkeypatch.setenv("PROOFMINT_AGENT_KEY", "0x" + "11" * 32)
    cases = {
        ("registrar",): "--model-id",
        ("prover", "--head", "4=3"): "--head 1=MODEL_ID",
        ("prover", "--head", "four=3"): "BATCH=MODEL_ID",
        ("prover", "--head", "1=3", "--erc8004-agent", "1"): "--public-url",
        ("registrar", "--model-id", "1", "--erc8004-agent", "1", "--public-url", "http://x"): "the prover's",
        ("dancer",): "Invalid value",
    }
    for extra, message in cases.items():
        result = runner.invoke(cli, ["agent", *extra, "--deployment", str(record)])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
    bad_record = runner.invoke(cli, ["agent", "settlement", "--deployment", str(record), "--rpc", "http://127.0.0.1:9"])
    unrecorded = runner.invoke(cli, ["agent", "registrar", "--rpc", "http://127.0.0.1:9", "--model-id", "1"])
    assert unrecorded.exit_code == 2 and "no deployment recorded for http://127.0.0.1:9" in unrecorded.output
    assert bad_record.exit_code != 0 and "not a deployment record" in str(bad_record.exception)


def _market_event(prompt: str, *, steps: int = 25, guidance_milli: int = 1_500, lane: int = 0) -> Any:
    from eth_abi.abi import encode

    from agents.runtime.events import ChainEvent

    data = encode(
        ["uint8", "uint256", "uint64", "uint64", "uint32", "uint32", "string"],
        [lane, 10**15, 1_700_000_000, 9, steps, guidance_milli, prompt],
    )
    topics = ("0x" + "00" * 32, "0x" + (7).to_bytes(32, "big").hex(), "0x" + "00" * 12 + "ab" * 20)
    return ChainEvent(12, "0x" + "11" * 32, "0x" + "22" * 32, 0, "0x" + "33" * 20, topics, data)


def test_a_market_event_becomes_a_request_and_bad_parameters_are_refused():
    from agents.daemons.market import REQUESTED_TOPIC, decode_request, market_key

    request_id, requester, request, facts = decode_request(_market_event("a red circle"))
    assert (request_id, requester.lower()) == (7, "0x" + "ab" * 20)
    assert request == GenerationRequest(prompt="a red circle", seed=9, steps=25, guidance=1.5)
    assert facts["fee"] == str(10**15) and facts["deadline"] == 1_700_000_000 and facts["block"] == 12
    assert facts["lane"] == "standard" and decode_request(_market_event("a red circle", lane=1))[3]["lane"] == "fast"
    with pytest.raises(ValueError, match="lane 2"):  # not a lane of the market's (its ABI decoder refuses it)
        decode_request(_market_event("a red circle", lane=2))
    assert market_key(31337, "0xABC", 7) == market_key(31337, "0xabc", 7) != market_key(31337, "0xabc", 8)
    assert REQUESTED_TOPIC.startswith("0x") and len(REQUESTED_TOPIC) == 66
    for bad in (_market_event("   "), _market_event("x", steps=0)):
        with pytest.raises(GeneratorError):
            decode_request(bad)
