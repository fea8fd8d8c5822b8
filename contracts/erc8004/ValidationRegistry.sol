// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IIdentityRegistry, IValidationRegistry} from "../interfaces/IERC8004.sol";

/// @title ValidationRegistry
/// @notice ERC-8004 Validation Registry for development chains (see {IValidationRegistry}): a
///         non-upgradeable port of the reference implementation 2.0.0 with the same external
///         behaviour; the identity registry is fixed at construction instead of `initialize`.
/// @dev Note:
///      - Request hashes are global and first come, first served: whoever may act for some agent
///        can request any unused hash, so a requester should commit to data that names its
///        agent (and the request cannot be withdrawn or re-addressed). The registry stores the
///        hash; it never checks that `requestURI` or `responseURI` match a hash.
///      - Any address may be named validator, the requester itself included; the registry
///        records who answered, not whether the answer is right. Incentives and slashing are the
///        validation protocol's, not this registry's.
///      - A validator may answer as often as it likes; the last answer replaces the stored one
///        (response, hash, tag, time). A stored response of 0 is "failed" once answered and
///        "not answered yet" before: `getSummary` counts only answered requests.
///      - Permission is the identity registry's `isAuthorizedOrOwner` at request time; a later
///        transfer of the agent changes nothing recorded.
///      - `getSummary` walks every request of the agent (and the named validators for each):
///        its gas grows with that history. Nothing that changes state loops.
contract ValidationRegistry is IValidationRegistry {
    /// @notice Highest response (100: passed).
    uint8 public constant MAX_RESPONSE = 100;

    struct ValidationStatus {
        address validatorAddress;
        uint8 response;
        bool hasResponse;
        uint256 agentId;
        bytes32 responseHash;
        string tag;
        uint256 lastUpdate;
    }

    IIdentityRegistry private immutable _IDENTITY_REGISTRY;

    mapping(bytes32 requestHash => ValidationStatus) private _validations;
    mapping(uint256 agentId => bytes32[] requestHashes) private _agentValidations;
    mapping(address validator => bytes32[] requestHashes) private _validatorRequests;

    /// @param identityRegistry The identity registry whose agents request validation here.
    constructor(address identityRegistry) {
        if (identityRegistry == address(0)) revert ValidationRegistry__BadIdentityRegistry();
        _IDENTITY_REGISTRY = IIdentityRegistry(identityRegistry);
    }

    /// @inheritdoc IValidationRegistry
    function getIdentityRegistry() external view returns (address) {
        return address(_IDENTITY_REGISTRY);
    }

    /// @inheritdoc IValidationRegistry
    /// @dev Reverts with the identity registry's ERC721NonexistentToken for an unknown agent.
    function validationRequest(
        address validatorAddress,
        uint256 agentId,
        string calldata requestURI,
        bytes32 requestHash
    ) external {
        if (validatorAddress == address(0)) revert ValidationRegistry__ZeroValidator();
        ValidationStatus storage status = _validations[requestHash];
        if (status.validatorAddress != address(0)) revert ValidationRegistry__RequestExists(requestHash);
        if (!_IDENTITY_REGISTRY.isAuthorizedOrOwner(msg.sender, agentId)) {
            revert ValidationRegistry__NotAuthorized(msg.sender, agentId);
        }

        status.validatorAddress = validatorAddress;
        status.agentId = agentId;
        status.lastUpdate = block.timestamp;
        _agentValidations[agentId].push(requestHash);
        _validatorRequests[validatorAddress].push(requestHash);
        emit ValidationRequest(validatorAddress, agentId, requestURI, requestHash);
    }

    /// @inheritdoc IValidationRegistry
    function validationResponse(
        bytes32 requestHash,
        uint8 response,
        string calldata responseURI,
        bytes32 responseHash,
        string calldata tag
    ) external {
        ValidationStatus storage status = _validations[requestHash];
        address validator = status.validatorAddress;
        if (validator == address(0)) revert ValidationRegistry__UnknownRequest(requestHash);
        if (msg.sender != validator) revert ValidationRegistry__NotValidator(msg.sender, validator);
        if (response > MAX_RESPONSE) revert ValidationRegistry__BadResponse(response);

        status.response = response;
        status.hasResponse = true;
        status.responseHash = responseHash;
        status.tag = tag;
        status.lastUpdate = block.timestamp;
        emit ValidationResponse(validator, status.agentId, requestHash, response, responseURI, responseHash, tag);
    }

    /// @inheritdoc IValidationRegistry
    function getValidationStatus(bytes32 requestHash)
        external
        view
        returns (
            address validatorAddress,
            uint256 agentId,
            uint8 response,
            bytes32 responseHash,
            string memory tag,
            uint256 lastUpdate
        )
    {
        ValidationStatus storage status = _validations[requestHash];
        if (status.validatorAddress == address(0)) revert ValidationRegistry__UnknownRequest(requestHash);
        return (
            status.validatorAddress,
            status.agentId,
            status.response,
            status.responseHash,
            status.tag,
            status.lastUpdate
        );
    }

    /// @inheritdoc IValidationRegistry
    /// @dev A view over every request of the agent, filtered by the validators the caller
    ///      names (the specification requires the loop); no state-changing function calls it.
    ///      The average is rounded down.
    function getSummary(uint256 agentId, address[] calldata validatorAddresses, string calldata tag)
        external
        view
        returns (uint64 count, uint8 averageResponse)
    {
        bytes32 tagHash = keccak256(bytes(tag));
        bytes32[] storage requestHashes = _agentValidations[agentId];
        uint256 total;
        for (uint256 i; i < requestHashes.length; ++i) {
            ValidationStatus storage status = _validations[requestHashes[i]];
            if (!status.hasResponse) continue;
            if (bytes(tag).length != 0 && keccak256(bytes(status.tag)) != tagHash) continue;
            if (!_named(status.validatorAddress, validatorAddresses)) continue;
            total += status.response;
            ++count;
        }
        // Each response is at most MAX_RESPONSE, so the average fits uint8.
        if (count > 0) averageResponse = uint8(total / count);
    }

    /// @inheritdoc IValidationRegistry
    function getAgentValidations(uint256 agentId) external view returns (bytes32[] memory requestHashes) {
        return _agentValidations[agentId];
    }

    /// @inheritdoc IValidationRegistry
    function getValidatorRequests(address validatorAddress) external view returns (bytes32[] memory requestHashes) {
        return _validatorRequests[validatorAddress];
    }

    /// @notice The implementation's version ("2.0.0", the reference implementation's it follows).
    /// @return The version.
    function getVersion() external pure returns (string memory) {
        return "2.0.0";
    }

    /// @dev Whether `validator` is among `validators`; an empty list names every validator.
    function _named(address validator, address[] calldata validators) private pure returns (bool) {
        if (validators.length == 0) return true;
        for (uint256 j; j < validators.length; ++j) {
            if (validators[j] == validator) return true;
        }
        return false;
    }
}
