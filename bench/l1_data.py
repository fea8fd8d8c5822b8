"""The L1 data gas an OP-stack chain (Base, OP Mainnet) charges for a transaction, under Fjord.

Besides L2 execution gas, an OP-stack transaction pays for the bytes the batcher posts to L1. Since
the Fjord upgrade that charge is priced from the FastLZ-compressed size of the transaction as it
is posted: its signed, canonical encoding (EIP-2718 type byte followed by the RLP payload, what
`eth_sendRawTransaction` takes and `eth_getRawTransactionByHash` returns). This module computes
that figure from the bytes alone; nothing here asks an L2 node.

1. `flz_compress(signed)`: FastLZ level 1, a Python port of solady's `LibZip.flzCompress` (the
   compressor the GasPriceOracle calls; op-geth's `FlzCompressLen` is the same algorithm, counting
   instead of writing); `fastlzSize` is the length of its output.
2. `fjord_estimated_size_scaled(fastlzSize)`
   = max(minTransactionSize * 1e6, intercept + fastlzCoef * fastlzSize),
   with intercept = -42_585_600, fastlzCoef = 836_500, minTransactionSize = 100: the regression's
   estimate of the transaction's Brotli-compressed size in batches, in millionths of a byte.
3. `fjord_l1_data_gas(fastlzSize)` = estimatedSizeScaled * 16 // 1e6: that estimate priced at 16
   gas per byte, floored, which is the `l1GasUsed` an op-geth receipt reports. The fee in wei is
   estimatedSizeScaled * (16 * baseFeeScalar * l1BaseFee + blobBaseFeeScalar * l1BlobBaseFee)
   / 1e12: L1 data gas is paid at the L1 base fee times the chain's scalar, not at the L2 gas
   price, so it is reported beside L2 execution gas and never added to it.

Where the constants and the formula come from (checked 2026-11-29):
- Optimism specs, `specs/protocol/fjord/exec-engine.md`, "Fjord L1-Cost fee changes (FastLZ
  estimator)" (mirrored at docs.base.org, base-chain/specs/upgrades/fjord/exec-engine): the
  formula above, intercept -42_585_600, fastlzCoef 836_500, minTransactionSize 100, and
  "fastlzSize: size of the FastLZ-compressed RLP-encoded signed tx"; compression "equivalent to
  the fastlz_compress function in fastlz.c" (ariya/FastLZ, level 1).
- op-geth `core/types/rollup_cost.go`: `L1CostIntercept = -42_585_600`, `L1CostFastlzCoef =
  836_500`, `MinTransactionSize = 100` (scaled by 1e6); `NewL1CostFuncFjord` returns the fee and
  `calldataGasUsed = estimatedSize * 16 / 1e6` (the receipt's `l1GasUsed`); `FlzCompressLen` is
  "based on" solady's `js/solady.js`. `core/types/transaction.go`: `RollupCostData()` compresses
  `tx.MarshalBinary()`, the signed canonical encoding.
- Optimism `packages/contracts-bedrock/src/L2/GasPriceOracle.sol`: `COST_INTERCEPT = -42_585_600`,
  `COST_FASTLZ_COEF = 836_500`, `MIN_TRANSACTION_SIZE = 100`; its Fjord `getL1GasUsed(unsigned)`
  is `_fjordLinearRegression(LibZip.flzCompress(unsigned).length + 68) * 16 / 1e6`, adding 68
  bytes for a signature it is not given. Here the signature is real: the signed bytes are
  compressed as op-geth does, with no padding.
- solady `src/utils/LibZip.sol` (npm `solady` 0.1.26, a dev dependency): `flzCompress`, "LZ77
  implementation based on FastLZ. Equivalent to level 1 compression" at ariya/FastLZ commit
  344eb4025f9ae866ebf7a2ec48850f7113a97a42. `tests/bench/test_l1_data.py` compares this port
  with it, compiled and run on a chain, byte for byte.

`signed_transaction_bytes` gets the signed bytes of a mined transaction from an ape provider and
checks that their keccak256 is the transaction's hash, so a figure is always computed from exactly
what was mined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

# ----------------------------------------------------------------------------- Fjord constants

FJORD_COST_INTERCEPT = -42_585_600
"""Intercept of the Fjord regression, scaled by 1e6 (negative)."""
FJORD_COST_FASTLZ_COEF = 836_500
"""Coefficient of `fastlzSize` in the Fjord regression, scaled by 1e6."""
FJORD_MIN_TRANSACTION_SIZE = 100
"""Lower bound of the estimated size, in bytes (unscaled)."""
FJORD_SCALE = 1_000_000
"""The regression's fixed-point scale (the GasPriceOracle's 10 ** DECIMALS)."""
L1_GAS_PER_BYTE = 16
"""L1 calldata gas of one (non-zero) byte: the price the estimated size is charged at."""

# ----------------------------------------------------------------------------- FastLZ level 1

_HASH_BITS = 13
_HASH_MASK = (1 << _HASH_BITS) - 1
"""The hash table has 2**13 = 8,192 slots, each holding the last position seen with that hash."""
_HASH_MULTIPLIER = 2_654_435_769
"""Knuth's multiplicative hash constant (2**32 / golden ratio), as in FastLZ and LibZip."""
_MAX_DISTANCE = 0x1FFF
"""A match may start at most 8,191 bytes back: the distance minus one fits in 13 bits."""
_INPUT_TAIL = 13
"""Matches are searched only while the position is below len(data) - 13 and compared only up to
len(data) - 4, so every read stays inside the input; the bytes after the last match go out as
literals."""
_LITERAL_RUN = 32
"""At most 32 literal bytes follow one control byte (which holds the run's length minus one)."""
_LONG_MATCH_CODE = 262
"""Length code of each piece a longer match is cut into (LibZip's `l >= 263` loop, FastLZ's
MAX_LEN - 2)."""
_SHORT_MATCH_LIMIT = 7
"""Length codes below 7 fit in the control byte's top three bits; 7 (0b111) means 'one more byte'."""


def _read24(data: bytes, i: int) -> int:
    """The three bytes at `i` as a little-endian integer (LibZip's `u24`)."""
    return data[i] | (data[i + 1] << 8) | (data[i + 2] << 16)


def _hash(sequence: int) -> int:
    """Slot of a 3-byte sequence: bits 19..31 of sequence * 2654435769 (LibZip's `hash`; the
    product is taken in full, as the EVM's 256-bit `mul` does, and bits above 31 are masked off)."""
    return ((_HASH_MULTIPLIER * sequence) >> 19) & _HASH_MASK


def _emit_literals(out: bytearray, data: bytes, start: int, end: int) -> None:
    """Appends data[start:end] as literal runs: a control byte (run length - 1, at most 31)
    followed by the run's bytes, 32 bytes a run until fewer remain."""
    while end - start >= _LITERAL_RUN:
        out.append(_LITERAL_RUN - 1)
        out += data[start : start + _LITERAL_RUN]
        start += _LITERAL_RUN
    if end > start:
        out.append(end - start - 1)
        out += data[start:end]


def _emit_match(out: bytearray, code: int, distance: int) -> None:
    """Appends one back-reference of `code + 2` bytes starting `distance` bytes back (LibZip's `mt`).

    The distance is stored minus one in 13 bits: its top 5 bits share the control byte with the
    length code, its low 8 bits follow. While the code is 263 or more, 262 is taken off it and
    written as (224 + (distance - 1 >> 8), 253, distance - 1 & 0xFF), as FastLZ level 1 does; the
    rest goes in the short form (code < 7) or the long form (control 224 + ..., then code - 7)."""
    stored = distance - 1
    while code > _LONG_MATCH_CODE:
        out += bytes((224 + (stored >> 8), 253, stored & 0xFF))
        code -= _LONG_MATCH_CODE
    if code >= _SHORT_MATCH_LIMIT:
        out += bytes((224 + (stored >> 8), code - _SHORT_MATCH_LIMIT, stored & 0xFF))
    else:
        out += bytes(((code << 5) + (stored >> 8), stored & 0xFF))


def _match_code(data: bytes, ref: int, ip: int, bound: int) -> int:
    """Length code of the match at `ip` against `ref`, whose first three bytes are equal.

    Compares data[ref + 3 + k] with data[ip + 3 + k] for k < bound - (ip + 3) and returns the
    first k that differs plus one (LibZip's `cmp` counts the differing byte before it stops), so
    that the match is code + 2 bytes long; or bound - (ip + 3) when none differs."""
    p, q = ref + 3, ip + 3
    limit = bound - q
    k = 0
    while k < limit:
        if data[p + k] != data[q + k]:
            return k + 1
        k += 1
    return limit


def flz_compress(data: bytes) -> bytes:
    """FastLZ level-1 compression of `data`, byte for byte what solady's `LibZip.flzCompress`
    returns (the test compares the two); its length is the Fjord formula's `fastlzSize`.

    Greedy LZ77 over a hash table of 3-byte sequences: at each position the table gives the last
    position with the same hash; when that is at most 8,191 bytes back and its three bytes are
    equal, the literals since the last match and then a back-reference are emitted, and the two
    positions after the match are hashed before the search goes on after it. A match starts below
    len(data) - 13 and ends at least 5 bytes before the end; inputs of 15 bytes or fewer are all
    literals."""
    n = len(data)
    out = bytearray()
    table = [0] * (_HASH_MASK + 1)  # 0 doubles as "nothing seen yet", as in LibZip's zeroed table
    ip_limit = n - _INPUT_TAIL
    anchor = 0  # start of the literals not yet emitted
    ip = 2  # LibZip starts the search at the third byte
    while ip < ip_limit:
        # Find the next match: hash the sequence at ip, remember ip, and stop at a near, equal one.
        while True:
            sequence = _read24(data, ip)
            slot = _hash(sequence)
            ref = table[slot]
            table[slot] = ip
            distance = ip - ref
            if ip >= ip_limit:
                break
            ip += 1
            if distance <= _MAX_DISTANCE and sequence == _read24(data, ref):
                break
        if ip >= ip_limit:
            break
        ip -= 1  # back to where the match starts
        if ip > anchor:
            _emit_literals(out, data, anchor, ip)
        code = _match_code(data, ref, ip, ip_limit + 9)
        _emit_match(out, code, distance)
        ip += code
        for _ in range(2):  # hash the two positions after the match, as LibZip's setNextHash does
            table[_hash(_read24(data, ip))] = ip
            ip += 1
        anchor = ip
    _emit_literals(out, data, anchor, n)
    return bytes(out)


# ----------------------------------------------------------------------------- Fjord L1 data gas


def fjord_estimated_size_scaled(fastlz_size: int) -> int:
    """max(100 * 1e6, -42_585_600 + 836_500 * fastlz_size): the estimated size in batches, in
    millionths of a byte (the spec's `estimatedSizeScaled`)."""
    if fastlz_size < 0:
        raise ValueError(f"fastlz_size must be >= 0, got {fastlz_size}")
    return max(FJORD_MIN_TRANSACTION_SIZE * FJORD_SCALE, FJORD_COST_INTERCEPT + FJORD_COST_FASTLZ_COEF * fastlz_size)


def fjord_l1_data_gas(fastlz_size: int) -> int:
    """estimatedSizeScaled * 16 // 1e6: the L1 gas an op-geth receipt reports as `l1GasUsed`."""
    return fjord_estimated_size_scaled(fastlz_size) * L1_GAS_PER_BYTE // FJORD_SCALE


@dataclass(frozen=True)
class L1Data:
    """What an OP-stack chain under Fjord charges L1 data for, for one signed transaction."""

    signed_size: int
    """Length of the signed, canonical encoding in bytes."""
    fastlz_size: int
    """Length of its FastLZ level-1 compression."""
    l1_data_gas: int
    """`fjord_l1_data_gas(fastlz_size)`."""


def l1_data_op_stack(signed: bytes) -> L1Data:
    """The Fjord L1 data figures of a signed transaction's canonical bytes."""
    fastlz_size = len(flz_compress(signed))
    return L1Data(signed_size=len(signed), fastlz_size=fastlz_size, l1_data_gas=fjord_l1_data_gas(fastlz_size))


# ----------------------------------------------------------------------------- signed bytes


class SignedBytesError(RuntimeError):
    """The signed bytes of a mined transaction could not be had, or they do not hash to its hash.
    Use a provider that answers `eth_getRawTransactionByHash`, or a receipt whose transaction
    carries its signature."""


def signed_transaction_bytes(provider: Any, receipt: Any) -> tuple[bytes, str]:
    """The signed canonical bytes of the transaction behind an ape `receipt`, and where they came
    from: the node (`eth_getRawTransactionByHash`, where the provider implements it, as anvil does)
    or, failing that, the receipt's own signed transaction serialized again (eth-account's
    encoding of its fields and signature; ape's embedded chain has no such RPC method).

    Either way keccak256 of the bytes must equal the receipt's transaction hash, or
    `SignedBytesError` is raised: the bytes are exactly those that were mined."""
    from ape.exceptions import APINotImplementedError

    txn_hash = bytes.fromhex(str(receipt.txn_hash).removeprefix("0x"))
    raw: bytes | None = None
    source = "eth_getRawTransactionByHash"
    try:
        answer = provider.make_request("eth_getRawTransactionByHash", ["0x" + txn_hash.hex()])
    except APINotImplementedError:
        answer = None
    if answer:
        raw = bytes(answer) if isinstance(answer, bytes | bytearray) else bytes.fromhex(str(answer).removeprefix("0x"))
    else:
        source = "re-serialized from the receipt's signed transaction"
        transaction = receipt.transaction
        if transaction.signature is None:
            raise SignedBytesError(f"transaction {'0x' + txn_hash.hex()} has no signature on this receipt")
        raw = bytes(transaction.serialize_transaction())
    if keccak(raw) != txn_hash:
        raise SignedBytesError(
            f"the signed bytes ({source}) hash to 0x{keccak(raw).hex()}, not to the mined transaction's hash "
            f"0x{txn_hash.hex()}"
        )
    return raw, source
