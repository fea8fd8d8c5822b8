// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";
import {ERC721Utils} from "@openzeppelin/contracts/token/ERC721/utils/ERC721Utils.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IIdentityRegistry} from "../interfaces/IERC8004.sol";

/// @title IdentityRegistry
/// @notice ERC-8004 Identity Registry for development chains (see {IIdentityRegistry}): a
///         non-upgradeable port of the reference implementation 2.0.0 with the same external
///         behaviour, ERC-721 name and EIP-712 domain, so a wallet signs the same message for it.
/// @dev Note:
///      - Anyone may register any number of agents; ids count up from 0. Nothing checks that
///        an agent's URI resolves, or that its registration file says what the agent does.
///      - Metadata is free-form bytes under any key but `agentWallet`; keys and values are not
///        bounded (the caller pays for what it stores), and `getMetadata` answers empty bytes
///        for unset keys and for agents that do not exist.
///      - `agentWallet` holds 20 bytes (`abi.encodePacked(wallet)`), readable through
///        `getMetadata` as well. It starts as the registrant, is cleared on every transfer
///        (to oneself too) and changes only through `setAgentWallet`, which takes the new
///        wallet's signature: ECDSA first (EOAs, EIP-7702 delegated EOAs), then ERC-1271. A
///        contract wallet's answer may change over time; the registry checks it once. The
///        signature names agent, wallet, current owner and a deadline at most
///        `MAX_DEADLINE_DELAY` ahead; it carries no nonce, so within its deadline it can be
///        submitted again (to set the same wallet once more) by the owner or an operator.
///      - Agents are minted to the caller; a contract caller must accept ERC-721 tokens
///        (`onERC721Received`). That hook runs last, after the agent is complete and every
///        event emitted: a hook that calls back sees a finished registration.
///      - Events of a registration, in order: `Transfer`, `MetadataSet` of `agentWallet`,
///        ERC-4906 `MetadataUpdate` (the overloads that take a URI), one `MetadataSet` per
///        entry, and `Registered`, as the specification lists them (the reference
///        implementation emits `Registered` before the `MetadataSet`s).
///      - There is no burn, no admin and no upgrade.
contract IdentityRegistry is ERC721URIStorage, EIP712, IIdentityRegistry {
    /// @notice Furthest a wallet signature's deadline may be ahead of the block's timestamp.
    uint256 public constant MAX_DEADLINE_DELAY = 5 minutes;
    /// @notice EIP-712 type hash of the new wallet's consent.
    bytes32 public constant AGENT_WALLET_SET_TYPEHASH =
        keccak256("AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)");

    string private constant _AGENT_WALLET_KEY = "agentWallet";
    bytes32 private constant _AGENT_WALLET_KEY_HASH = keccak256(bytes(_AGENT_WALLET_KEY));

    uint256 private _nextAgentId;
    mapping(uint256 agentId => mapping(string metadataKey => bytes metadataValue)) private _metadata;

    constructor() ERC721("AgentIdentity", "AGENT") EIP712("ERC8004IdentityRegistry", "1") {}

    /// @inheritdoc IIdentityRegistry
    function register() external returns (uint256 agentId) {
        agentId = _mintAgent();
        emit Registered(agentId, "", msg.sender);
        _checkReceiver(agentId);
    }

    /// @inheritdoc IIdentityRegistry
    function register(string calldata agentURI) external returns (uint256 agentId) {
        agentId = _mintAgent();
        _setTokenURI(agentId, agentURI);
        emit Registered(agentId, agentURI, msg.sender);
        _checkReceiver(agentId);
    }

    /// @inheritdoc IIdentityRegistry
    /// @dev Loops over the caller's own entries; a reserved key anywhere reverts the whole call.
    function register(string calldata agentURI, MetadataEntry[] calldata metadata)
        external
        returns (uint256 agentId)
    {
        agentId = _mintAgent();
        _setTokenURI(agentId, agentURI);
        for (uint256 i; i < metadata.length; ++i) {
            _setMetadata(agentId, metadata[i].metadataKey, metadata[i].metadataValue);
        }
        emit Registered(agentId, agentURI, msg.sender);
        _checkReceiver(agentId);
    }

    /// @inheritdoc IIdentityRegistry
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory) {
        return _metadata[agentId][metadataKey];
    }

    /// @inheritdoc IIdentityRegistry
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) external {
        _requireAuthorized(agentId);
        _setMetadata(agentId, metadataKey, metadataValue);
    }

    /// @inheritdoc IIdentityRegistry
    function setAgentURI(uint256 agentId, string calldata newURI) external {
        _requireAuthorized(agentId);
        _setTokenURI(agentId, newURI);
        emit URIUpdated(agentId, newURI, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function getAgentWallet(uint256 agentId) external view returns (address) {
        return address(bytes20(_metadata[agentId][_AGENT_WALLET_KEY]));
    }

    /// @inheritdoc IIdentityRegistry
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external {
        address agentOwner = _requireAuthorized(agentId);
        if (newWallet == address(0)) revert IdentityRegistry__ZeroWallet();
        if (block.timestamp > deadline) revert IdentityRegistry__Expired(deadline, block.timestamp);
        uint256 latest = block.timestamp + MAX_DEADLINE_DELAY;
        if (deadline > latest) revert IdentityRegistry__DeadlineTooFar(deadline, latest);

        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(AGENT_WALLET_SET_TYPEHASH, agentId, newWallet, agentOwner, deadline))
        );
        // ECDSA first, whether or not the wallet has code (an EIP-7702 delegated EOA has), then
        // ERC-1271: the reference implementation's order. SignatureChecker.isValidSignatureNow
        // would skip ECDSA for any address with code, so it is not used whole.
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (
            (err != ECDSA.RecoverError.NoError || recovered != newWallet)
                && !SignatureChecker.isValidERC1271SignatureNow(newWallet, digest, signature)
        ) {
            revert IdentityRegistry__BadWalletSignature(newWallet);
        }
        _storeAgentWallet(agentId, abi.encodePacked(newWallet));
    }

    /// @inheritdoc IIdentityRegistry
    function unsetAgentWallet(uint256 agentId) external {
        _requireAuthorized(agentId);
        _storeAgentWallet(agentId, "");
    }

    /// @inheritdoc IIdentityRegistry
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool) {
        return _isAuthorized(ownerOf(agentId), spender, agentId);
    }

    /// @inheritdoc IIdentityRegistry
    function getVersion() external pure returns (string memory) {
        return "2.0.0";
    }

    /// @dev Clears `agentWallet` on every transfer (not on mint), before the balances move: a
    ///      verified wallet never passes to a new owner, who must verify one again.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address) {
        if (to != address(0) && _ownerOf(tokenId) != address(0)) _storeAgentWallet(tokenId, "");
        return super._update(to, tokenId, auth);
    }

    /// @dev Mints the next agent to the caller with the caller as its wallet. The receiver
    ///      check (an external call) is left to `_checkReceiver`, after every other effect.
    function _mintAgent() private returns (uint256 agentId) {
        agentId = _nextAgentId++;
        _mint(msg.sender, agentId);
        _storeAgentWallet(agentId, abi.encodePacked(msg.sender));
    }

    /// @dev `_safeMint`'s receiver check, run last (checks-effects-interactions).
    function _checkReceiver(uint256 agentId) private {
        ERC721Utils.checkOnERC721Received(msg.sender, address(0), msg.sender, agentId, "");
    }

    function _setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) private {
        if (keccak256(bytes(metadataKey)) == _AGENT_WALLET_KEY_HASH) revert IdentityRegistry__ReservedKey();
        _metadata[agentId][metadataKey] = metadataValue;
        emit MetadataSet(agentId, metadataKey, metadataKey, metadataValue);
    }

    function _storeAgentWallet(uint256 agentId, bytes memory wallet) private {
        _metadata[agentId][_AGENT_WALLET_KEY] = wallet;
        emit MetadataSet(agentId, _AGENT_WALLET_KEY, _AGENT_WALLET_KEY, wallet);
    }

    /// @dev Reverts with ERC721NonexistentToken for an agent that does not exist, and
    ///      IdentityRegistry__NotAuthorized unless the caller is its owner or approved for it.
    function _requireAuthorized(uint256 agentId) private view returns (address agentOwner) {
        agentOwner = ownerOf(agentId);
        if (!_isAuthorized(agentOwner, msg.sender, agentId)) {
            revert IdentityRegistry__NotAuthorized(msg.sender, agentId);
        }
    }
}
