"""`proofmint pay`'s refusals, each one line with exit 2 before anything is signed (the paid
round trip itself runs against `proofmint up` in tests/agents/daemons/test_up.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from agents.app.main import cli

KEY = "0x" + "11" * 32


@pytest.mark.parametrize(
    ("args", "env", "why"),
    [
        (["ftp://example.org/x"], {"PROOFMINT_PAYER_KEY": KEY}, "is not an http(s) URL"),
        (["http://127.0.0.1:1/x"], {"PROOFMINT_PAYER_KEY": ""}, "set $PROOFMINT_PAYER_KEY"),
        (["http://127.0.0.1:1/x"], {"PROOFMINT_PAYER_KEY": "0x1234"}, "is not a private key"),
        (["http://127.0.0.1:1/x", "--key-env", "MY_KEY"], {"MY_KEY": ""}, "set $MY_KEY"),
        (["http://127.0.0.1:1/x", "--max-per-use", "lots"], {"PROOFMINT_PAYER_KEY": KEY}, "expected an amount"),
        (["http://127.0.0.1:1/x", "--service", "0xdead"], {"PROOFMINT_PAYER_KEY": KEY}, "is not an address"),
        (["http://127.0.0.1:1/x", "-o", "/missing/dir/x.png"], {"PROOFMINT_PAYER_KEY": KEY}, "is not a folder"),
        (["http://127.0.0.1:1/x"], {"PROOFMINT_PAYER_KEY": KEY}, "cannot fetch http://127.0.0.1:1/x"),
    ],
)
def test_pay_refuses_bad_input_in_one_line(args: list[str], env: dict[str, str], why: str, tmp_path: Path):
    result = CliRunner().invoke(cli, ["pay", *args], env=env)
    text = result.output + str(result.exception or "")
    assert result.exit_code != 0 and why in text, text
    assert "Traceback" not in result.output
