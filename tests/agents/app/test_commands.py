"""`proofmint up`'s state (agents/app/commands.py): it starts empty, and nothing `up` did not
create in this run is ever deleted (issue 22: `up --state DIR` used to erase DIR)."""

from __future__ import annotations

import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agents.app.commands import UP_STATES, check_ports, fresh_state
from agents.app.main import cli
from agents.core.toolchain import project_root


def test_up_refuses_a_state_folder_in_use_and_leaves_it_as_it_was(tmp_path: Path):
    state = tmp_path / "agents"
    state.mkdir()
    (state / "journal.db").write_bytes(b"someone's jobs")
    (state / "api").mkdir()
    (state / "api" / "channels.db").write_bytes(b"vouchers owed")
    result = CliRunner().invoke(cli, ["up", "--state", str(state), "--api-port", "0"])
    assert result.exit_code == 2
    assert "is not empty" in result.output and "never reuses or deletes" in result.output
    assert "Traceback" not in result.output
    assert (state / "journal.db").read_bytes() == b"someone's jobs"
    assert (state / "api" / "channels.db").read_bytes() == b"vouchers owed"


def test_up_takes_an_empty_or_new_folder_and_never_a_file(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fresh_state(empty) == (empty, False)
    new = tmp_path / "new" / "state"
    assert fresh_state(new) == (new, False) and new.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(click.UsageError, match="is a file"):
        fresh_state(tmp_path / "file")


def test_without_state_each_run_gets_a_throwaway_folder_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".cache" / "agents").mkdir(parents=True)  # what `proofmint agent` uses: not up's
    first, throwaway = fresh_state(None)
    second, _ = fresh_state(None)
    assert throwaway and first != second
    assert first.parent == second.parent == UP_STATES and first.is_dir() and not any(first.iterdir())
    assert (tmp_path / ".cache" / "agents").is_dir()


def test_up_refuses_a_prompts_file_it_cannot_read_before_setting_anything_up(tmp_path: Path):
    cases = {
        b"a red circle\n\xff\xfe latin-1 text\n": "not UTF-8 text (byte 0xff on line 2)",
        b"a red circle\nbell \x07 ringing\n": "line 2: the prompt has a control character",
        b"\n  \n": "no prompts",
        ("x" * 1_001).encode(): "line 1: the prompt has 1001 characters",
    }
    for content, why in cases.items():
        prompts = tmp_path / "prompts.txt"
        prompts.write_bytes(content)
        state = tmp_path / "state"
        result = CliRunner().invoke(cli, ["up", "--state", str(state), "--prompts", str(prompts), "--api-port", "0"])
        assert result.exit_code == 2 and why in result.output, result.output
        assert "Traceback" not in result.output and not state.exists(), "refused before anything was made"


def test_up_refuses_a_busy_port_before_setting_anything_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # run from elsewhere: the throwaway states are still the repository's
    throwaways = project_root() / UP_STATES
    before = set(throwaways.iterdir()) if throwaways.is_dir() else set()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for option in ("--api-port", "--metrics-port", "--rpc-port"):
            result = CliRunner().invoke(cli, ["up", option, str(port)])
            assert result.exit_code == 2 and f"127.0.0.1:{port} is in use" in result.output, result.output
            assert option in result.output and "Traceback" not in result.output
    assert set(throwaways.iterdir()) <= before, "the throwaway state went with the refusal"
    assert not (tmp_path / ".cache").exists()
    assert Path.cwd() == tmp_path, "refused before it moved to the repository"
    mixed = CliRunner().invoke(cli, ["up", "--network", "ethereum:local:test", "--rpc-port", "8545"])
    assert mixed.exit_code == 2 and "--rpc-port is the port of an anvil node" in mixed.output
    with pytest.raises(click.BadParameter, match="the same port twice"):
        check_ports({"--metrics-port": port, "--api-port": port})


def test_a_policy_file_that_is_no_policy_is_refused_in_one_line_before_setup(tmp_path: Path):
    bad = tmp_path / "policy.json"
    bad.write_text('{"blocked_terms": "gore"}')
    for command in (["up", "--state", str(tmp_path / "state")], ["agent", "generator", "--rpc", "http://127.0.0.1:9"]):
        result = CliRunner().invoke(cli, [*command, "--policy", str(bad)])
        assert result.exit_code == 2 and "blocked_terms is a list of strings" in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()
    missing = CliRunner().invoke(cli, ["up", "--policy", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "not a readable JSON policy" in missing.output


def test_quotas_pricing_and_cost_price_files_that_are_wrong_are_refused_in_one_line_before_setup(tmp_path: Path):
    bad = tmp_path / "bad.json"
    for option, content, said in (
        ("--quotas", '{"default": {"requests": 5}}', "periodSeconds"),
        ("--request-pricing", '{"base": 1}', "missing"),
        ("--cost-prices", '{"usdPerEth": 1}', "exactly"),
    ):
        bad.write_text(content)
        result = CliRunner().invoke(cli, ["up", "--state", str(tmp_path / "state"), option, str(bad)])
        assert result.exit_code == 2 and said in result.output and option in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()
    costs = CliRunner().invoke(cli, ["costs", "--state", str(tmp_path / "state"), "--cost-prices", str(bad)])
    assert costs.exit_code == 2 and "exactly" in costs.output


def test_a_curation_head_folder_that_is_no_head_is_refused_in_one_line_before_setup(tmp_path: Path):
    (tmp_path / "head").mkdir()
    for command in (["up", "--state", str(tmp_path / "state")], ["agent", "curator", "--rpc", "http://127.0.0.1:9"]):
        result = CliRunner().invoke(cli, [*command, "--curation-head", str(tmp_path / "head")])
        assert result.exit_code == 2 and "is not a curation head folder" in result.output, result.output
        assert "make train-head writes one" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "state").exists()


def test_request_journals_into_a_postgresql_journal_that_up_then_refuses_to_reuse(postgres_url: str, tmp_path: Path):
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    requested = CliRunner().invoke(cli, ["request", "a red circle", "--journal", postgres_url])
    assert requested.exit_code == 0, requested.output
    assert "queued (at requested)" in requested.output
    again = CliRunner().invoke(cli, ["request", "a red circle"], env={"PROOFMINT_JOURNAL": postgres_url})
    assert again.exit_code == 0 and "already journaled" in again.output
    refused = CliRunner().invoke(
        cli, ["up", "--journal", postgres_url, "--state", str(tmp_path / "s"), "--api-port", "0"]
    )
    assert refused.exit_code == 2 and "already journals 1 jobs" in refused.output
    assert "Traceback" not in refused.output
    journal = Journal(postgres_url, final=jobs.FINAL)
    assert journal.counts() == {"requested": 1}  # refused, never emptied
    journal.close()


def test_a_journal_url_of_another_engine_is_refused_without_its_password():
    result = CliRunner().invoke(cli, ["request", "a red circle", "--journal", "mysql://bob:hunter2@db/jobs"])
    assert result.exit_code == 2 and "mysql://bob:***@db/jobs" in result.output
    assert "hunter2" not in result.output and "postgresql://" in result.output
