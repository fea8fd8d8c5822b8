// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title HostileActor
/// @notice TEST ONLY. A contract account that can act as creator, developer, payer or receiver,
///         and misbehave when paid: accept, revert, burn all gas, or re-enter a stored call.
contract HostileActor is IERC1155Receiver {
    enum Mode {
        Accept,
        Revert,
        BurnGas,
        Reenter
    }

    error HostileActor__Refused();

    Mode public mode;
    address public reenterTarget;
    bytes public reenterData;
    uint256 public reentries;
    bool public lastReentrySucceeded;

    function setMode(Mode newMode) external {
        mode = newMode;
    }

    function setReentry(address target, bytes calldata data) external {
        reenterTarget = target;
        reenterData = data;
    }

    /// @notice Calls `target` with `data` and `msg.value`, bubbling up a revert.
    function exec(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        _misbehave();
    }

    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external returns (bytes4) {
        _misbehave();
        return IERC1155Receiver.onERC1155Received.selector;
    }

    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        returns (bytes4)
    {
        _misbehave();
        return IERC1155Receiver.onERC1155BatchReceived.selector;
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC1155Receiver).interfaceId || interfaceId == type(IERC165).interfaceId;
    }

    function _misbehave() private {
        if (mode == Mode.Revert) revert HostileActor__Refused();
        if (mode == Mode.BurnGas) {
            while (true) {}
        }
        if (mode == Mode.Reenter && reentries == 0) {
            reentries = 1;
            (bool ok,) = reenterTarget.call(reenterData);
            lastReentrySucceeded = ok;
        }
    }
}
