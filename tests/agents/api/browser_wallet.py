"""A test wallet for the dApp: an EIP-1193 provider injected into the page (announced by
EIP-6963 and set as window.ethereum) whose every request crosses into this process, where a
real key signs (eth_account: EIP-1559 transactions, EIP-712 typed data v4) and everything else
goes to the node's JSON-RPC (anvil). It records what it was asked, as a wallet would show it,
and can be told to reject the next request as a person would (EIP-1193 error 4001)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from eth_account import Account

INIT_SCRIPT = """
(() => {
  const listeners = {};
  const provider = {
    isProofmintTestWallet: true,
    async request(args) {
      if (!args || typeof args.method !== "string") throw Object.assign(new Error("bad request"), { code: -32600 });
      const reply = JSON.parse(await window.__proofmintWallet(args.method, JSON.stringify(args.params ?? [])));
      if (reply.error) throw Object.assign(new Error(reply.error.message), reply.error);
      return reply.result;
    },
    on(event, fn) { (listeners[event] ||= []).push(fn); return provider; },
    removeListener(event, fn) { listeners[event] = (listeners[event] || []).filter((f) => f !== fn); return provider; },
  };
  window.__proofmintEmit = (event, value) => (listeners[event] || []).forEach((fn) => fn(value));
  const info = Object.freeze({
    uuid: "0b6f3e0e-6c55-4a59-9a43-3f1f0c2f7a11",
    name: "proofmint test wallet",
    icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E",
    rdns: "invalid.proofmint.test-wallet",
  });
  const announce = () =>
    window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }));
  window.addEventListener("eip6963:requestProvider", announce);
  window.ethereum = provider;
  announce();
})();
"""

USER_REJECTED = 4001
UNRECOGNIZED_CHAIN = 4902


class WalletRejectionError(Exception):
    """An EIP-1193 error: the wallet's own (4001: rejected), or the node's passed through with
    its `data` (a revert's error data, which the page decodes into the custom error's name)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.data = code, data


@dataclass
class InjectedWallet:
    rpc: str
    key: str
    chain_id: int
    connected: bool = False
    reject_next: bool = False
    asked: list[tuple[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=itertools.count)
    _page: Any = None

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)

    async def install(self, page: Any) -> None:
        self._page = page
        await page.expose_function("__proofmintWallet", self.handle)
        await page.add_init_script(INIT_SCRIPT)

    async def switch_account(self, page: Any, key: str) -> None:
        """As a person choosing another account in the wallet."""
        self.key = key
        await page.evaluate("(a) => window.__proofmintEmit('accountsChanged', [a])", self.address)

    async def move_to_chain(self, page: Any, chain_id: int) -> None:
        """As a person choosing another network in the wallet."""
        self.chain_id = chain_id
        await page.evaluate("(c) => window.__proofmintEmit('chainChanged', c)", hex(chain_id))

    def signed(self, method: str) -> list[Any]:
        return [params for m, params in self.asked if m == method]

    async def handle(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        try:
            result = await self._answer(method, params)
        except WalletRejectionError as exc:
            error = {"code": exc.code, "message": str(exc)}
            if exc.data is not None:
                error["data"] = exc.data
            return json.dumps({"error": error})
        return json.dumps({"result": result})

    async def rpc_call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        async with aiohttp.ClientSession() as session, session.post(self.rpc, json=body) as response:
            reply = await response.json()
        if "error" in reply:
            error = reply["error"]
            raise WalletRejectionError(int(error.get("code", -32603)), str(error.get("message")), error.get("data"))
        return reply["result"]

    def _consent(self, method: str, params: Any) -> None:
        self.asked.append((method, params))
        if self.reject_next:
            self.reject_next = False
            raise WalletRejectionError(USER_REJECTED, "User rejected the request.")

    def _own(self, address: str) -> None:
        if address.lower() != self.address.lower():
            raise WalletRejectionError(4100, f"{address} is not an account of this wallet")

    async def _answer(self, method: str, params: list[Any]) -> Any:
        if method == "eth_requestAccounts":
            self._consent(method, params)
            self.connected = True
            return [self.address]
        if method == "eth_accounts":
            return [self.address] if self.connected else []
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if wanted not in (self.chain_id, int(await self.rpc_call("eth_chainId", []), 16)):
                raise WalletRejectionError(UNRECOGNIZED_CHAIN, "Unrecognized chain ID")
            self._consent(method, params)
            if wanted != self.chain_id:
                await self.move_to_chain(self._page, wanted)
            return None
        if method == "eth_signTypedData_v4":
            address, data = params
            self._own(address)
            typed = json.loads(data) if isinstance(data, str) else data
            self._consent(method, typed)
            return "0x" + Account.sign_typed_data(self.key, full_message=typed).signature.hex().removeprefix("0x")
        if method == "eth_sendTransaction":
            tx = dict(params[0])
            self._own(tx["from"])
            self._consent(method, tx)
            return await self._send(tx)
        if method.startswith(("wallet_", "personal_", "eth_sign")):
            raise WalletRejectionError(4200, f"{method} is not supported by this wallet")
        return await self.rpc_call(method, params)

    async def _send(self, tx: dict[str, Any]) -> str:
        nonce = int(await self.rpc_call("eth_getTransactionCount", [self.address, "pending"]), 16)
        call = {k: tx[k] for k in ("from", "to", "data", "value") if tx.get(k) is not None}
        gas = int(tx["gas"], 16) if tx.get("gas") else int(await self.rpc_call("eth_estimateGas", [call]), 16)
        block = await self.rpc_call("eth_getBlockByNumber", ["latest", False])
        tip = int(await self.rpc_call("eth_maxPriorityFeePerGas", []), 16)
        fields = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": tx["to"],
            "value": int(tx.get("value") or "0x0", 16),
            "data": tx.get("data") or "0x",
            "gas": gas * 12 // 10,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * int(block["baseFeePerGas"], 16) + tip,
        }
        signed = Account.sign_transaction(fields, self.key)
        return str(
            await self.rpc_call("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex().removeprefix("0x")])
        )
