"""`proofmint up`'s state (agents/app/commands.py): it starts empty, and nothing `up` did not
create in this run is ever deleted (issue 22: `up --state DIR` used to erase DIR)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from agents.app.commands import UP_STATES, fresh_state
from agents.app.main import cli


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
