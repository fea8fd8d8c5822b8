// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title HookToken
/// @notice TEST ONLY. A hostile ERC-20 (never allow-listed in production, but an owner could be
///         fooled): on a transfer out of `hookFrom` it first makes one call the test arms, and
///         records its result. Used to show that `sweepPayments` credits a reentering or
///         splitter-paying token once (tests/contracts/test_push_payments_attacks.py).
contract HookToken {
    string public constant name = "Hook";
    string public constant symbol = "HOOK";
    uint8 public constant decimals = 6;
    mapping(address => uint256) public balanceOf;
    address public hookFrom;
    address public hookTarget;
    bytes public hookData;
    bool public hookCalled;
    bool public hookOk;
    bytes public hookReturn;

    event Transfer(address indexed from, address indexed to, uint256 value);

    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function arm(address from, address target, bytes calldata data) external {
        hookFrom = from;
        hookTarget = target;
        hookData = data;
        hookCalled = false;
    }

    function allowance(address, address) external pure returns (uint256) {
        return type(uint256).max;
    }

    function approve(address, uint256) external pure returns (bool) {
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        if (from == hookFrom && hookTarget != address(0)) {
            address target = hookTarget;
            hookTarget = address(0);
            hookCalled = true;
            (hookOk, hookReturn) = target.call(hookData);
        }
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
