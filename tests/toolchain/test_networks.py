"""ape-config.yaml networks: the embedded default, anvil, and the three L2 testnets from the environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from ape import networks
out = {"default": networks.ethereum.local.default_provider_name, "uris": {}, "choices": {}}
for eco in ("base", "optimism", "arbitrum"):
    out["choices"][eco] = sorted(networks.get_network_choices(ecosystem_filter=eco))
    provider = networks.get_provider_from_choice(f"{eco}:sepolia:node")
    out["uris"][eco] = provider.uri
print("PROBE" + json.dumps(out))
"""

ENV_OF = {
    "base": "PROOFMINT_BASE_SEPOLIA_RPC",
    "optimism": "PROOFMINT_OPTIMISM_SEPOLIA_RPC",
    "arbitrum": "PROOFMINT_ARBITRUM_SEPOLIA_RPC",
}


def test_l2_testnet_rpc_urls_come_from_the_environment():
    env = {**os.environ, **{var: f"http://127.0.0.1:9/{eco}" for eco, var in ENV_OF.items()}}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.split("PROBE", 1)[1])
    assert out["default"] == "test"
    for eco in ENV_OF:
        assert f"{eco}:sepolia:node" in out["choices"][eco]
        assert out["uris"][eco] == f"http://127.0.0.1:9/{eco}"


def test_config_holds_no_private_key():
    text = (ROOT / "ape-config.yaml").read_text()
    assert not re.search(r"\b(0x)?[0-9a-fA-F]{64}\b", text)
    assert "private_key" not in text.lower()
