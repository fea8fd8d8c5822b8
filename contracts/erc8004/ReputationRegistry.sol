// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IIdentityRegistry, IReputationRegistry} from "../interfaces/IERC8004.sol";

/// @title ReputationRegistry
/// @notice ERC-8004 Reputation Registry for development chains (see {IReputationRegistry}): a
///         non-upgradeable port of the reference implementation 2.0.0 with the same external
///         behaviour; the identity registry is fixed at construction instead of `initialize`.
/// @dev Note:
///      - Anyone but the agent's owner and its approved operators (as the identity registry
///        says when the feedback is given) may rate an agent, any number of times: the registry
///        records signals, it does not judge them. A past owner's feedback, feedback an address
///        gave before it became owner or operator, feedback from another address of the owner's:
///        all count. Readers filter by the clients they trust.
///      - Only a feedback's client revokes it; revoked feedback stays readable. Anyone may
///        append any number of responses, to revoked feedback too; only their count is stored.
///      - `endpoint`, `feedbackURI`, `feedbackHash`, `responseURI` and `responseHash` are emitted,
///        not stored, and not checked (a hash need not match anything).
///      - `getSummary`, `readAllFeedback` and `getResponseCount` walk the feedback (and
///        responders) of the clients they are asked about, or of every client of the agent:
///        their gas grows with that history, so a view call over a much-rated agent may exceed
///        a node's gas cap. Nothing that changes state loops.
///      - `getSummary` averages at 18 decimals and returns the average at the decimals most of
///        the counted feedback uses (on a tie, the fewest decimals), rounded toward zero.
contract ReputationRegistry is IReputationRegistry {
    /// @notice Largest |value| a feedback may carry (1e38, below int128's 1.7e38).
    int128 public constant MAX_ABS_VALUE = 1e38;
    /// @notice Most decimals a feedback value may have.
    uint8 public constant MAX_VALUE_DECIMALS = 18;

    struct Feedback {
        int128 value;
        uint8 valueDecimals;
        bool isRevoked;
        string tag1;
        string tag2;
    }

    /// @dev A `getSummary` or `readAllFeedback` selection.
    struct Query {
        uint256 agentId;
        address[] clients;
        bool anyTag1;
        bytes32 tag1Hash;
        bool anyTag2;
        bytes32 tag2Hash;
        bool includeRevoked;
    }

    /// @dev `readAllFeedback`'s answer.
    struct FeedbackList {
        address[] clients;
        uint64[] indexes;
        int128[] values;
        uint8[] decimals;
        string[] tag1s;
        string[] tag2s;
        bool[] revoked;
    }

    IIdentityRegistry private immutable _IDENTITY_REGISTRY;

    mapping(uint256 agentId => mapping(address client => mapping(uint64 feedbackIndex => Feedback))) private
        _feedback;
    mapping(uint256 agentId => mapping(address client => uint64)) private _lastIndex;
    mapping(
        uint256 agentId
            => mapping(address client => mapping(uint64 feedbackIndex => mapping(address responder => uint64)))
    ) private _responseCount;
    mapping(uint256 agentId => mapping(address client => mapping(uint64 feedbackIndex => address[]))) private
        _responders;
    mapping(uint256 agentId => address[]) private _clients;
    mapping(uint256 agentId => mapping(address client => bool)) private _isClient;

    /// @param identityRegistry The identity registry whose agents this registry rates.
    constructor(address identityRegistry) {
        if (identityRegistry == address(0)) revert ReputationRegistry__BadIdentityRegistry();
        _IDENTITY_REGISTRY = IIdentityRegistry(identityRegistry);
    }

    /// @inheritdoc IReputationRegistry
    function getIdentityRegistry() external view returns (address) {
        return address(_IDENTITY_REGISTRY);
    }

    /// @inheritdoc IReputationRegistry
    /// @dev Reverts with the identity registry's ERC721NonexistentToken for an unknown agent.
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string calldata tag1,
        string calldata tag2,
        string calldata endpoint,
        string calldata feedbackURI,
        bytes32 feedbackHash
    ) external {
        if (valueDecimals > MAX_VALUE_DECIMALS) revert ReputationRegistry__TooManyDecimals(valueDecimals);
        if (value > MAX_ABS_VALUE || value < -MAX_ABS_VALUE) revert ReputationRegistry__ValueTooLarge(value);
        if (_IDENTITY_REGISTRY.isAuthorizedOrOwner(msg.sender, agentId)) {
            revert ReputationRegistry__SelfFeedback(msg.sender, agentId);
        }

        uint64 feedbackIndex = ++_lastIndex[agentId][msg.sender];
        _feedback[agentId][msg.sender][feedbackIndex] =
            Feedback({value: value, valueDecimals: valueDecimals, isRevoked: false, tag1: tag1, tag2: tag2});
        if (!_isClient[agentId][msg.sender]) {
            _isClient[agentId][msg.sender] = true;
            _clients[agentId].push(msg.sender);
        }
        _emitNewFeedback(agentId, feedbackIndex, value, valueDecimals, tag1, tag2, endpoint, feedbackURI, feedbackHash);
    }

    /// @inheritdoc IReputationRegistry
    function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external {
        uint64 lastIndex = _lastIndex[agentId][msg.sender];
        if (feedbackIndex == 0 || feedbackIndex > lastIndex) {
            revert ReputationRegistry__BadIndex(feedbackIndex, lastIndex);
        }
        Feedback storage feedback = _feedback[agentId][msg.sender][feedbackIndex];
        if (feedback.isRevoked) revert ReputationRegistry__AlreadyRevoked(feedbackIndex);
        feedback.isRevoked = true;
        emit FeedbackRevoked(agentId, msg.sender, feedbackIndex);
    }

    /// @inheritdoc IReputationRegistry
    /// @dev Checks in the reference implementation's order: index 0, then the URI, then the
    ///      index past the client's last.
    function appendResponse(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        string calldata responseURI,
        bytes32 responseHash
    ) external {
        uint64 lastIndex = _lastIndex[agentId][clientAddress];
        if (feedbackIndex == 0) revert ReputationRegistry__BadIndex(feedbackIndex, lastIndex);
        if (bytes(responseURI).length == 0) revert ReputationRegistry__EmptyURI();
        if (feedbackIndex > lastIndex) revert ReputationRegistry__BadIndex(feedbackIndex, lastIndex);

        mapping(address responder => uint64) storage counts = _responseCount[agentId][clientAddress][feedbackIndex];
        if (counts[msg.sender] == 0) _responders[agentId][clientAddress][feedbackIndex].push(msg.sender);
        ++counts[msg.sender];
        emit ResponseAppended(agentId, clientAddress, feedbackIndex, msg.sender, responseURI, responseHash);
    }

    /// @inheritdoc IReputationRegistry
    function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64) {
        return _lastIndex[agentId][clientAddress];
    }

    /// @inheritdoc IReputationRegistry
    function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex)
        external
        view
        returns (int128 value, uint8 valueDecimals, string memory tag1, string memory tag2, bool isRevoked)
    {
        uint64 lastIndex = _lastIndex[agentId][clientAddress];
        if (feedbackIndex == 0 || feedbackIndex > lastIndex) {
            revert ReputationRegistry__BadIndex(feedbackIndex, lastIndex);
        }
        Feedback storage feedback = _feedback[agentId][clientAddress][feedbackIndex];
        return (feedback.value, feedback.valueDecimals, feedback.tag1, feedback.tag2, feedback.isRevoked);
    }

    /// @inheritdoc IReputationRegistry
    /// @dev A view over the clients the caller names (the specification requires the loop);
    ///      no state-changing function calls it.
    function getSummary(uint256 agentId, address[] calldata clientAddresses, string calldata tag1, string calldata tag2)
        external
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals)
    {
        if (clientAddresses.length == 0) revert ReputationRegistry__ClientsRequired();
        Query memory query = _query(agentId, clientAddresses, tag1, tag2, false);
        return _summarize(query);
    }

    /// @inheritdoc IReputationRegistry
    /// @dev A view over the clients the caller names, or every client of the agent (the
    ///      specification requires the loop); no state-changing function calls it. Public with
    ///      memory arguments (the same ABI): as an external function its calldata arguments and
    ///      seven results leave no stack slot the legacy code generator can reach.
    function readAllFeedback(
        uint256 agentId,
        address[] memory clientAddresses,
        string memory tag1,
        string memory tag2,
        bool includeRevoked
    )
        public
        view
        returns (
            address[] memory clients,
            uint64[] memory feedbackIndexes,
            int128[] memory values,
            uint8[] memory valueDecimals,
            string[] memory tag1s,
            string[] memory tag2s,
            bool[] memory revokedStatuses
        )
    {
        Query memory query = _query(agentId, clientAddresses, tag1, tag2, includeRevoked);
        FeedbackList memory list = _collect(query);
        return (list.clients, list.indexes, list.values, list.decimals, list.tag1s, list.tag2s, list.revoked);
    }

    /// @inheritdoc IReputationRegistry
    /// @dev A view over what the caller asks for: every client of the agent (client zero), every
    ///      feedback of one client (index 0) or one feedback; no state-changing function calls it.
    function getResponseCount(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        address[] calldata responders
    ) external view returns (uint64 count) {
        if (clientAddress == address(0)) {
            address[] storage clients = _clients[agentId];
            for (uint256 i; i < clients.length; ++i) {
                count += _countClientResponses(agentId, clients[i], responders);
            }
        } else if (feedbackIndex == 0) {
            count = _countClientResponses(agentId, clientAddress, responders);
        } else {
            count = _countResponses(agentId, clientAddress, feedbackIndex, responders);
        }
    }

    /// @inheritdoc IReputationRegistry
    function getClients(uint256 agentId) external view returns (address[] memory) {
        return _clients[agentId];
    }

    /// @notice The implementation's version ("2.0.0", the reference implementation's it follows).
    /// @return The version.
    function getVersion() external pure returns (string memory) {
        return "2.0.0";
    }

    /// @dev Emits NewFeedback from a frame of its own: with the eight calldata arguments of
    ///      `giveFeedback` on the stack, the event's eleven values do not fit the legacy
    ///      code generator's reach (the project compiles without via-IR).
    function _emitNewFeedback(
        uint256 agentId,
        uint64 feedbackIndex,
        int128 value,
        uint8 valueDecimals,
        string memory tag1,
        string memory tag2,
        string memory endpoint,
        string memory feedbackURI,
        bytes32 feedbackHash
    ) private {
        emit NewFeedback(
            agentId,
            msg.sender,
            feedbackIndex,
            value,
            valueDecimals,
            tag1, // indexedTag1: its keccak256 is the topic
            tag1,
            tag2,
            endpoint,
            feedbackURI,
            feedbackHash
        );
    }

    function _countClientResponses(uint256 agentId, address clientAddress, address[] calldata responders)
        private
        view
        returns (uint64 count)
    {
        uint64 lastIndex = _lastIndex[agentId][clientAddress];
        for (uint64 j = 1; j <= lastIndex; ++j) {
            count += _countResponses(agentId, clientAddress, j, responders);
        }
    }

    /// @dev Responses to one feedback from `responders`, or from everyone when it is empty.
    function _countResponses(
        uint256 agentId,
        address clientAddress,
        uint64 feedbackIndex,
        address[] calldata responders
    ) private view returns (uint64 count) {
        mapping(address responder => uint64) storage counts = _responseCount[agentId][clientAddress][feedbackIndex];
        if (responders.length == 0) {
            address[] storage all = _responders[agentId][clientAddress][feedbackIndex];
            for (uint256 k; k < all.length; ++k) {
                count += counts[all[k]];
            }
        } else {
            for (uint256 k; k < responders.length; ++k) {
                count += counts[responders[k]];
            }
        }
    }

    /// @dev What `getSummary` and `readAllFeedback` select, in one memory word: the legacy code
    ///      generator cannot reach their many calldata arguments from inside the loops.
    function _query(
        uint256 agentId,
        address[] memory clientAddresses,
        string memory tag1,
        string memory tag2,
        bool includeRevoked
    ) private view returns (Query memory query) {
        query.agentId = agentId;
        query.clients = clientAddresses;
        if (clientAddresses.length == 0) query.clients = _clients[agentId];
        query.anyTag1 = bytes(tag1).length == 0;
        query.tag1Hash = keccak256(bytes(tag1));
        query.anyTag2 = bytes(tag2).length == 0;
        query.tag2Hash = keccak256(bytes(tag2));
        query.includeRevoked = includeRevoked;
    }

    function _summarize(Query memory query)
        private
        view
        returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals)
    {
        int256 sumWad;
        uint64[19] memory decimalCounts; // how many counted feedbacks use each number of decimals
        for (uint256 i; i < query.clients.length; ++i) {
            address client = query.clients[i];
            uint64 lastIndex = _lastIndex[query.agentId][client];
            for (uint64 j = 1; j <= lastIndex; ++j) {
                Feedback storage feedback = _feedback[query.agentId][client][j];
                if (!_selected(query, feedback)) continue;
                // |value| <= 1e38 times at most 1e18: each term is below 1e56, far inside int256.
                sumWad += int256(feedback.value) * _scale(feedback.valueDecimals);
                ++decimalCounts[feedback.valueDecimals];
                ++count;
            }
        }
        if (count == 0) return (0, 0, 0);

        uint64 modeCount;
        for (uint8 d; d <= MAX_VALUE_DECIMALS; ++d) {
            if (decimalCounts[d] > modeCount) {
                modeCount = decimalCounts[d];
                summaryValueDecimals = d;
            }
        }
        // An average of values within +-1e38, scaled down: it fits int128.
        summaryValue = int128(sumWad / int256(uint256(count)) / _scale(summaryValueDecimals));
    }

    function _collect(Query memory query) private view returns (FeedbackList memory list) {
        uint256 total;
        for (uint256 i; i < query.clients.length; ++i) {
            uint64 lastIndex = _lastIndex[query.agentId][query.clients[i]];
            for (uint64 j = 1; j <= lastIndex; ++j) {
                if (_selected(query, _feedback[query.agentId][query.clients[i]][j])) ++total;
            }
        }

        list.clients = new address[](total);
        list.indexes = new uint64[](total);
        list.values = new int128[](total);
        list.decimals = new uint8[](total);
        list.tag1s = new string[](total);
        list.tag2s = new string[](total);
        list.revoked = new bool[](total);

        uint256 k;
        for (uint256 i; i < query.clients.length; ++i) {
            address client = query.clients[i];
            uint64 lastIndex = _lastIndex[query.agentId][client];
            for (uint64 j = 1; j <= lastIndex; ++j) {
                Feedback storage feedback = _feedback[query.agentId][client][j];
                if (!_selected(query, feedback)) continue;
                list.clients[k] = client;
                list.indexes[k] = j;
                list.values[k] = feedback.value;
                list.decimals[k] = feedback.valueDecimals;
                list.tag1s[k] = feedback.tag1;
                list.tag2s[k] = feedback.tag2;
                list.revoked[k] = feedback.isRevoked;
                ++k;
            }
        }
    }

    /// @dev Not revoked (unless revoked ones are wanted), and each tag as asked ("" for any).
    function _selected(Query memory query, Feedback storage feedback) private view returns (bool) {
        return (query.includeRevoked || !feedback.isRevoked)
            && (query.anyTag1 || keccak256(bytes(feedback.tag1)) == query.tag1Hash)
            && (query.anyTag2 || keccak256(bytes(feedback.tag2)) == query.tag2Hash);
    }

    /// @dev 10**(18 - decimals): what brings a value with `decimals` decimals to 18.
    function _scale(uint8 decimals) private pure returns (int256) {
        return int256(10 ** uint256(MAX_VALUE_DECIMALS - decimals));
    }
}
