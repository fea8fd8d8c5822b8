// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IIdentityRegistry
/// @notice ERC-8004 (Trustless Agents) Identity Registry: an ERC-721 whose token id is an
///         agent's id and whose token URI (`agentURI`) resolves to the agent's registration file.
///         Proofmint deploys its own only on development chains; on live networks it takes the
///         canonical registry's address from configuration. The functions are the
///         specification's (`eips.ethereum.org/EIPS/eip-8004`, reference implementation
///         `erc-8004/erc-8004-contracts` 2.0.0); the errors are proofmint's.
/// @dev Agent ids count up from 0, as the reference implementation's do. The metadata key
///      `agentWallet` is reserved: it starts as the owner, is cleared on every transfer, and is
///      only changed through `setAgentWallet` with the new wallet's EIP-712 (or ERC-1271)
///      signature of `AgentWalletSet(agentId, newWallet, owner, deadline)`.
interface IIdentityRegistry {
    /// @notice One metadata entry of `register(agentURI, metadata)`.
    struct MetadataEntry {
        string metadataKey;
        bytes metadataValue;
    }

    /// @notice An agent was minted to `owner` with `agentURI` (empty when set later).
    event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
    /// @notice A metadata entry was set (also for `agentWallet`, on register, set, unset and transfer).
    event MetadataSet(
        uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue
    );
    /// @notice An agent's URI was changed by `updatedBy`.
    event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);

    /// @notice The caller is neither the agent's owner nor approved for it.
    error IdentityRegistry__NotAuthorized(address caller, uint256 agentId);
    /// @notice `agentWallet` may only be set through `setAgentWallet`.
    error IdentityRegistry__ReservedKey();
    /// @notice The new wallet is the zero address.
    error IdentityRegistry__ZeroWallet();
    /// @notice The wallet's signature expired (now > deadline).
    error IdentityRegistry__Expired(uint256 deadline, uint256 nowTime);
    /// @notice The deadline is further than `MAX_DEADLINE_DELAY` ahead.
    error IdentityRegistry__DeadlineTooFar(uint256 deadline, uint256 latest);
    /// @notice The signature is not the new wallet's (neither ECDSA nor ERC-1271).
    error IdentityRegistry__BadWalletSignature(address wallet);

    /// @notice Mints a new agent to the caller, with no URI yet.
    /// @return agentId The new agent's id.
    function register() external returns (uint256 agentId);

    /// @notice Mints a new agent to the caller with its registration file's URI.
    /// @param agentURI `https://`, `ipfs://` or a base64 `data:` URI of the registration file.
    /// @return agentId The new agent's id.
    function register(string calldata agentURI) external returns (uint256 agentId);

    /// @notice Mints a new agent to the caller with its URI and extra on-chain metadata.
    /// @param agentURI The registration file's URI.
    /// @param metadata Entries to set; none may be `agentWallet`.
    /// @return agentId The new agent's id.
    function register(string calldata agentURI, MetadataEntry[] calldata metadata) external returns (uint256 agentId);

    /// @notice One metadata entry of an agent (empty when unset).
    /// @param agentId The agent.
    /// @param metadataKey The key.
    /// @return The value.
    function getMetadata(uint256 agentId, string calldata metadataKey) external view returns (bytes memory);

    /// @notice Sets one metadata entry. Only the owner or an approved operator.
    /// @param agentId The agent.
    /// @param metadataKey The key (not `agentWallet`).
    /// @param metadataValue The value.
    function setMetadata(uint256 agentId, string calldata metadataKey, bytes calldata metadataValue) external;

    /// @notice Changes the agent's URI. Only the owner or an approved operator.
    /// @param agentId The agent.
    /// @param newURI The registration file's new URI.
    function setAgentURI(uint256 agentId, string calldata newURI) external;

    /// @notice Where the agent receives payments (the zero address when unset).
    /// @param agentId The agent.
    /// @return The wallet.
    function getAgentWallet(uint256 agentId) external view returns (address);

    /// @notice Sets the agent's wallet with that wallet's proof of control. Only the owner or an
    ///         approved operator.
    /// @param agentId The agent.
    /// @param newWallet The wallet.
    /// @param deadline Last second the signature is good for; at most `MAX_DEADLINE_DELAY` ahead.
    /// @param signature The wallet's EIP-712 signature of
    ///        `AgentWalletSet(uint256 agentId,address newWallet,address owner,uint256 deadline)`
    ///        (domain "ERC8004IdentityRegistry", "1"), or an ERC-1271 one for contract wallets.
    function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes calldata signature) external;

    /// @notice Clears the agent's wallet. Only the owner or an approved operator.
    /// @param agentId The agent.
    function unsetAgentWallet(uint256 agentId) external;

    /// @notice Whether `spender` is the agent's owner or approved for it.
    /// @dev Reverts for an agent that does not exist.
    /// @param spender The address.
    /// @param agentId The agent.
    /// @return True when it is.
    function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool);

    /// @notice The implementation's version ("2.0.0", the reference implementation's it follows).
    /// @return The version.
    function getVersion() external pure returns (string memory);
}

/// @title IReputationRegistry
/// @notice ERC-8004 Reputation Registry: clients give agents fixed-point feedback values with
///         optional tags, revoke their own, and anyone appends responses.
/// @dev Feedback indexes are per (agent, client) and count from 1. The agent's owner and its
///      approved operators cannot give it feedback. Summaries are views that walk what they are
///      asked for; callers must name the clients they trust (the specification's Sybil advice).
interface IReputationRegistry {
    /// @notice Feedback was given.
    event NewFeedback(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        int128 value,
        uint8 valueDecimals,
        string indexed indexedTag1,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    );
    /// @notice A client revoked its feedback.
    event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex);
    /// @notice A response was appended to a feedback.
    event ResponseAppended(
        uint256 indexed agentId,
        address indexed clientAddress,
        uint64 feedbackIndex,
        address indexed responder,
        string responseURI,
        bytes32 responseHash
    );

    /// @notice More than 18 decimals.
    error ReputationRegistry__TooManyDecimals(uint8 valueDecimals);
    /// @notice |value| above 1e38.
    error ReputationRegistry__ValueTooLarge(int128 value);
    /// @notice The agent's owner or operator tried to rate it.
    error ReputationRegistry__SelfFeedback(address caller, uint256 agentId);
    /// @notice No feedback with this index (0, or past the client's last).
    error ReputationRegistry__BadIndex(uint64 feedbackIndex, uint64 lastIndex);
    /// @notice The feedback was revoked already.
    error ReputationRegistry__AlreadyRevoked(uint64 feedbackIndex);
    /// @notice A response needs a URI.
    error ReputationRegistry__EmptyURI();
    /// @notice `getSummary` needs the clients to count.
    error ReputationRegistry__ClientsRequired();
    /// @notice The identity registry is the zero address.
    error ReputationRegistry__BadIdentityRegistry();

    /// @notice The identity registry whose agents this registry rates.
    /// @return The registry.
    function getIdentityRegistry() external view returns (address);

    /// @notice Gives feedback to an agent as the caller.
    /// @param agentId The agent (must exist).
    /// @param value Signed fixed-point value.
    /// @param valueDecimals Its decimals, 0 to 18.
    /// @param tag1 Optional tag.
    /// @param tag2 Optional tag.
    /// @param endpoint Optional endpoint the feedback is about.
    /// @param feedbackURI Optional URI of the feedback file.
    /// @param feedbackHash keccak256 of that file (optional for content-addressed URIs).
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string calldata tag1,
        string calldata tag2,
        string calldata endpoint,
        string calldata feedbackURI,
        bytes32 feedbackHash
    ) external;

    /// @notice Revokes the caller's feedback `feedbackIndex` on `agentId`.
    /// @param agentId The agent.
    /// @param feedbackIndex The caller's feedback index.
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external;

    /// @notice Appends a response (a refund shown, a spam tag) to a feedback. Anyone may.
    /// @param agentId The agent.
    /// @param clientAddress Who gave the feedback.
    /// @param feedbackIndex Its index.
    /// @param responseURI The response file's URI (required).
    /// @param responseHash keccak256 of the response file.
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external;

    /// @notice The last feedback index `clientAddress` gave `agentId` (0: none).
    /// @param agentId The agent.
    /// @param clientAddress The client.
    /// @return The index.
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64);

    /// @notice One feedback.
    /// @param agentId The agent.
    /// @param clientAddress The client.
    /// @param feedbackIndex Its index.
    /// @return value The value.
    /// @return valueDecimals Its decimals.
    /// @return tag1 First tag.
    /// @return tag2 Second tag.
    /// @return isRevoked Whether it was revoked.
    function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex)
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked);

    /// @notice Count and average of the unrevoked feedback of the named clients, optionally
    ///         filtered by tags: averaged at 18 decimals, returned at the decimals most of the
    ///         counted feedback uses (the reference implementation's rule); (0, 0, 0) for none.
    /// @param agentId The agent.
    /// @param clientAddresses The clients to count (required: unfiltered sums are Sybil-prone).
    /// @param tag1 Filter ("" for any).
    /// @param tag2 Filter ("" for any).
    /// @return count How many feedbacks were counted.
    /// @return summaryValue Their average value.
    /// @return summaryValueDecimals The average's decimals.
    function getSummary(uint256 agentId, address[] calldata clientAddresses, string calldata tag1, string calldata tag2)
        external
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals);

    /// @notice Every feedback of an agent, filtered by clients (none: all), tags and revocation.
    /// @param agentId The agent.
    /// @param clientAddresses Clients to include (empty: every client).
    /// @param tag1 Filter ("" for any).
    /// @param tag2 Filter ("" for any).
    /// @param includeRevoked Whether revoked feedback is included.
    /// @return clients Client of each feedback.
    /// @return feedbackIndexes Index of each.
    /// @return values Value of each.
    /// @return valueDecimals Decimals of each.
    /// @return tag1s First tag of each.
    /// @return tag2s Second tag of each.
    /// @return revokedStatuses Whether each was revoked.
    function readAllFeedback(
        uint256 agentId,
        address[] calldata clientAddresses,
        string calldata tag1,
        string calldata tag2,
        bool includeRevoked
    )
        external
        view
        returns (
            address[] memory clients,
            uint64[] memory feedbackIndexes,
            int128[] memory values,
            uint8[] memory valueDecimals,
            string[] memory tag1s,
            string[] memory tag2s,
            bool[] memory revokedStatuses
        );

    /// @notice How many responses a feedback has, optionally only from `responders`.
    /// @param agentId The agent.
    /// @param clientAddress The client (zero: every client of the agent).
    /// @param feedbackIndex The feedback (0: every feedback of the client).
    /// @param responders Responders to count (empty: all).
    /// @return count The number of responses.
    function getResponseCount(uint256 agentId, address clientAddress, uint64 feedbackIndex, address[] calldata responders)
        external
        view
        returns (uint64 count);

    /// @notice Every client that gave the agent feedback, in order of first feedback.
    /// @param agentId The agent.
    /// @return The clients.
    function getClients(uint256 agentId) external view returns (address[] memory);
}

/// @title IValidationRegistry
/// @notice ERC-8004 Validation Registry: an agent's owner or operator asks a validator (by
///         address) to check a piece of work, named by `requestHash`; only that validator
///         answers, with 0..100, as often as it likes.
interface IValidationRegistry {
    /// @notice Validation of `requestHash` was requested from `validatorAddress`.
    event ValidationRequest(
        address indexed validatorAddress, uint256 indexed agentId, string requestURI, bytes32 indexed requestHash
    );
    /// @notice The validator answered.
    event ValidationResponse(
        address indexed validatorAddress,
        uint256 indexed agentId,
        bytes32 indexed requestHash,
        uint8 response,
        string responseURI,
        bytes32 responseHash,
        string tag
    );

    /// @notice The validator is the zero address.
    error ValidationRegistry__ZeroValidator();
    /// @notice A request with this hash exists already.
    error ValidationRegistry__RequestExists(bytes32 requestHash);
    /// @notice The caller is neither the agent's owner nor approved for it.
    error ValidationRegistry__NotAuthorized(address caller, uint256 agentId);
    /// @notice No request with this hash.
    error ValidationRegistry__UnknownRequest(bytes32 requestHash);
    /// @notice Only the request's validator may answer.
    error ValidationRegistry__NotValidator(address caller, address validatorAddress);
    /// @notice Responses are 0..100.
    error ValidationRegistry__BadResponse(uint8 response);
    /// @notice The identity registry is the zero address.
    error ValidationRegistry__BadIdentityRegistry();

    /// @notice The identity registry whose agents request validation here.
    /// @return The registry.
    function getIdentityRegistry() external view returns (address);

    /// @notice Asks `validatorAddress` to validate the work `requestHash` names. Only the
    ///         agent's owner or an approved operator; a hash is requested once.
    /// @param validatorAddress The validator that alone may answer.
    /// @param agentId The agent whose work it is.
    /// @param requestURI Where the validator finds what it needs.
    /// @param requestHash The commitment to that request.
    function validationRequest(address validatorAddress, uint256 agentId, string calldata requestURI, bytes32 requestHash)
        external;

    /// @notice The request's validator answers (again, if it likes).
    /// @param requestHash The request.
    /// @param response 0 (failed) .. 100 (passed).
    /// @param responseURI Optional evidence.
    /// @param responseHash Optional commitment to the evidence.
    /// @param tag Optional category.
    function validationResponse(
        bytes32 requestHash,
        uint8 response,
        string calldata responseURI,
        bytes32 responseHash,
        string calldata tag
    ) external;

    /// @notice A request's state. Reverts for an unknown request.
    /// @param requestHash The request.
    /// @return validatorAddress Its validator.
    /// @return agentId Its agent.
    /// @return response The last response (0 before any).
    /// @return responseHash The last response's hash.
    /// @return tag The last response's tag.
    /// @return lastUpdate When it was requested or last answered.
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
        );

    /// @notice Count and average response of the agent's answered requests, optionally only
    ///         those of `validatorAddresses` and with `tag`.
    /// @param agentId The agent.
    /// @param validatorAddresses Validators to count (empty: all).
    /// @param tag Filter ("" for any).
    /// @return count Answered requests counted.
    /// @return averageResponse Their average response.
    function getSummary(uint256 agentId, address[] calldata validatorAddresses, string calldata tag)
        external
        view
        returns (uint64 count, uint8 averageResponse);

    /// @notice Every request of an agent.
    /// @param agentId The agent.
    /// @return requestHashes The requests.
    function getAgentValidations(uint256 agentId) external view returns (bytes32[] memory requestHashes);

    /// @notice Every request sent to a validator.
    /// @param validatorAddress The validator.
    /// @return requestHashes The requests.
    function getValidatorRequests(address validatorAddress) external view returns (bytes32[] memory requestHashes);
}
