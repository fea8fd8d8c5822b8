// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title DevUsd
/// @notice A 6-decimal dollar for development chains with EIP-3009 transfers with authorization,
///         as USDC has them: what x402's `exact` scheme pays with. The owner mints; on a live
///         network proofmint takes a configured stablecoin instead and never deploys this.
/// @dev Follows EIP-3009 (and USDC v2.2's `bytes signature` overloads, which also take ERC-1271
///      wallets): authorizations are EIP-712 signed, single use by (authorizer, nonce), valid
///      strictly between `validAfter` and `validBefore`. `receiveWithAuthorization` may only be
///      submitted by the payee, so nobody can front-run a contract that pulls a payment.
contract DevUsd is ERC20, EIP712, Ownable {
    /// @notice EIP-712 type hash of a transfer anyone may submit.
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-712 type hash of a transfer only its payee may submit.
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-712 type hash of a cancellation.
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    mapping(address authorizer => mapping(bytes32 nonce => bool)) private _used;

    /// @notice An authorization was used (or cancelled) and can never be used again.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice An authorization was cancelled before use.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    /// @notice The authorization is not valid yet (now <= validAfter).
    error DevUsd__NotYetValid(uint256 validAfter, uint256 nowTime);
    /// @notice The authorization expired (now >= validBefore).
    error DevUsd__Expired(uint256 validBefore, uint256 nowTime);
    /// @notice The nonce was used or cancelled already.
    error DevUsd__AuthorizationUsed(address authorizer, bytes32 nonce);
    /// @notice The signature is not the authorizer's.
    error DevUsd__BadSignature(address authorizer);
    /// @notice `receiveWithAuthorization` submitted by someone other than its payee.
    error DevUsd__CallerNotPayee(address caller, address payee);

    /// @param initialOwner Who may mint.
    constructor(address initialOwner) ERC20("Proofmint Dev USD", "pUSD") EIP712("Proofmint Dev USD", "2") Ownable(initialOwner) {}

    /// @notice Mints `amount` to `to`.
    /// @dev Only the owner.
    /// @param to Receiver.
    /// @param amount Amount in base units (6 decimals).
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    /// @notice 6, as USDC.
    /// @return The decimals.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice The EIP-712 domain's version, as USDC's `version()` (facilitators read it).
    /// @return "2".
    function version() external pure returns (string memory) {
        return "2";
    }

    /// @notice The EIP-712 domain separator authorizations are signed under.
    /// @return The separator.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Whether an authorization of `authorizer` with `nonce` was used or cancelled.
    /// @param authorizer The signer.
    /// @param nonce The authorization's nonce.
    /// @return True once used or cancelled.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _used[authorizer][nonce];
    }

    /// @notice Transfers `value` from `from` to `to` as `from` authorized; anyone may submit it.
    /// @param from Payer (the signer).
    /// @param to Payee.
    /// @param value Amount.
    /// @param validAfter Valid only after this time.
    /// @param validBefore Valid only before this time.
    /// @param nonce Unique per payer: the authorization's id.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _authorized(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v));
    }

    /// @notice `transferWithAuthorization` with a signature as bytes (65-byte ECDSA, or whatever
    ///         an ERC-1271 payer accepts).
    /// @param from Payer (the signer).
    /// @param to Payee.
    /// @param value Amount.
    /// @param validAfter Valid only after this time.
    /// @param validBefore Valid only before this time.
    /// @param nonce Unique per payer: the authorization's id.
    /// @param signature The signature.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        _authorized(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, signature);
    }

    /// @notice Transfers as `from` authorized; only the payee `to` may submit it.
    /// @param from Payer (the signer).
    /// @param to Payee, and the caller.
    /// @param value Amount.
    /// @param validAfter Valid only after this time.
    /// @param validBefore Valid only before this time.
    /// @param nonce Unique per payer: the authorization's id.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        if (msg.sender != to) revert DevUsd__CallerNotPayee(msg.sender, to);
        _authorized(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, abi.encodePacked(r, s, v));
    }

    /// @notice Cancels an unused authorization, as its signer asked.
    /// @param authorizer The signer.
    /// @param nonce The authorization's nonce.
    /// @param v Signature v.
    /// @param r Signature r.
    /// @param s Signature s.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        if (_used[authorizer][nonce]) revert DevUsd__AuthorizationUsed(authorizer, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        if (!SignatureChecker.isValidSignatureNow(authorizer, digest, abi.encodePacked(r, s, v))) {
            revert DevUsd__BadSignature(authorizer);
        }
        _used[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _authorized(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) private {
        if (block.timestamp <= validAfter) revert DevUsd__NotYetValid(validAfter, block.timestamp);
        if (block.timestamp >= validBefore) revert DevUsd__Expired(validBefore, block.timestamp);
        if (_used[from][nonce]) revert DevUsd__AuthorizationUsed(from, nonce);
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)));
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) revert DevUsd__BadSignature(from);
        _used[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }
}
