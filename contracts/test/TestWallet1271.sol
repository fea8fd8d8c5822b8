// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title TestWallet1271
/// @notice TEST ONLY. A smart-contract wallet (ERC-1271) whose owner key signs for it, with
///         hostile modes: reject everything, try to write state while validating, burn all the
///         gas it is given, or answer with 150 KB (cheap for it, dear for a caller that copies
///         the answer).
contract TestWallet1271 is IERC1271 {
    enum Mode {
        OwnerSigns,
        RejectAll,
        WriteState,
        BurnGas,
        ReturnBomb
    }

    address public immutable OWNER;
    Mode public mode;
    uint256 public writes;

    constructor(address owner) {
        OWNER = owner;
    }

    function setMode(Mode newMode) external {
        mode = newMode;
    }

    /// @notice Calls `target` with `data` and `msg.value` (to deposit escrow as the wallet).
    function exec(address target, bytes calldata data) external payable returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call{value: msg.value}(data);
        require(ok, "exec failed");
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (mode == Mode.RejectAll) return 0xffffffff;
        if (mode == Mode.ReturnBomb) {
            assembly {
                return(0, 150000) // 150 KB of zeroes: a refusal, expensive to copy
            }
        }
        if (mode == Mode.BurnGas) {
            uint256 spin;
            while (gasleft() > 0) ++spin; // runs out of gas
            return bytes4(uint32(spin));
        }
        if (mode == Mode.WriteState) {
            // A state write under STATICCALL reverts; validation must then fail closed.
            (bool ok,) = address(this).staticcall(abi.encodeCall(this.bump, ()));
            if (!ok) return 0xffffffff;
        }
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == OWNER ? IERC1271.isValidSignature.selector : bytes4(0);
    }

    function bump() external {
        ++writes;
    }
}
