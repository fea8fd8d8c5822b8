// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IGenerationMarket} from "./interfaces/IGenerationMarket.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";

/// @title GenerationMarket
/// @notice Paid generation requests fulfilled by the operator's agents (see {IGenerationMarket}).
/// @dev Note:
///      - The operator is trusted to deliver an image for the request's prompt: the chain checks
///        only that the asset is registered and fulfils nothing else. The asset's provenance
///        record (parameters digest, manifest) lets the requester check the prompt and seed.
///      - A request's fee is fixed when it is paid; the window to fulfil it is fixed at deploy.
///      - Each lane has its own price, the fast lane's never below the standard lane's. The lane
///        is a promise of the operator's agents (which lane they serve first); the chain only
///        records it and takes its price.
///      - Balances are pull-only, and every state change happens before any ETH moves.
contract GenerationMarket is IGenerationMarket, Ownable2Step, ReentrancyGuardTransient {
    /// @notice Longest accepted prompt, in bytes.
    uint256 public constant MAX_PROMPT_BYTES = 1_000;
    /// @notice Most denoising steps a request may ask for.
    uint32 public constant MAX_STEPS = 1_000;
    /// @notice Largest guidance scale a request may ask for, times 1,000.
    uint32 public constant MAX_GUIDANCE_MILLI = 50_000;
    /// @notice Highest price the owner may set for each lane (fees are stored in 96 bits).
    uint256 public constant MAX_PRICE = 1_000 ether;
    /// @notice Shortest and longest fulfilment window the constructor accepts.
    uint64 public constant MIN_WINDOW = 5 minutes;
    uint64 public constant MAX_WINDOW = 30 days;

    /// @notice The registry whose assets fulfil requests.
    IProvenanceRegistry public immutable PROVENANCE;
    /// @notice Seconds the operator has to fulfil a request.
    uint64 public immutable FULFILMENT_WINDOW;

    mapping(Lane lane => uint256 price) private _prices;
    address private _operator;
    uint256 private _count;
    mapping(uint256 requestId => Request) private _requests;
    mapping(bytes32 asset => uint256 requestId) private _requestOfAsset;
    mapping(address account => uint256) private _balances;

    /// @param provenance The provenance registry.
    /// @param operator_ Who fulfils requests and earns their fees.
    /// @param standardPrice The price of a standard-lane request, in wei.
    /// @param fastPrice The price of a fast-lane request, in wei (at least `standardPrice`).
    /// @param window Seconds the operator has to fulfil a request.
    /// @param initialOwner Sets the prices and the operator.
    constructor(
        IProvenanceRegistry provenance,
        address operator_,
        uint256 standardPrice,
        uint256 fastPrice,
        uint64 window,
        address initialOwner
    ) Ownable(initialOwner) {
        if (address(provenance).code.length == 0 || operator_ == address(0)) revert GenerationMarket__BadConfig();
        if (window < MIN_WINDOW || window > MAX_WINDOW) revert GenerationMarket__BadConfig();
        PROVENANCE = provenance;
        FULFILMENT_WINDOW = window;
        _setPrices(standardPrice, fastPrice);
        _operator = operator_;
        emit OperatorSet(operator_);
    }

    /// @inheritdoc IGenerationMarket
    function requestGeneration(string calldata prompt, uint64 seed, uint32 steps, uint32 guidanceMilli, Lane lane)
        external
        payable
        returns (uint256 requestId)
    {
        _checkRequest(bytes(prompt).length, steps, guidanceMilli, lane);
        requestId = _store(msg.sender, lane);
        // The deadline is recomputed rather than held, to keep the stack shallow: the same value.
        emit GenerationRequested(
            requestId, msg.sender, lane, msg.value, _deadline(), seed, steps, guidanceMilli, prompt
        );
    }

    /// @inheritdoc IGenerationMarket
    function fulfill(uint256 requestId, bytes32 asset) external {
        if (msg.sender != _operator) revert GenerationMarket__NotOperator(msg.sender);
        Request storage request = _openRequest(requestId);
        if (block.timestamp > request.deadline) revert GenerationMarket__Expired(requestId, request.deadline);
        if (!PROVENANCE.exists(asset)) revert GenerationMarket__AssetNotRegistered(asset);
        uint256 seq = PROVENANCE.getAsset(asset).seq;
        if (seq < request.assetsBefore) revert GenerationMarket__AssetPredatesRequest(asset, seq, request.assetsBefore);
        uint256 used = _requestOfAsset[asset];
        if (used != 0) revert GenerationMarket__AssetAlreadyUsed(asset, used);
        request.status = Status.Fulfilled;
        request.asset = asset;
        _requestOfAsset[asset] = requestId;
        uint256 fee = request.fee;
        _balances[msg.sender] += fee;
        emit GenerationFulfilled(requestId, asset, msg.sender, fee);
    }

    /// @inheritdoc IGenerationMarket
    function refund(uint256 requestId) external {
        Request storage request = _openRequest(requestId);
        if (msg.sender != request.requester) revert GenerationMarket__NotRequester(msg.sender);
        if (block.timestamp <= request.deadline) revert GenerationMarket__NotExpired(requestId, request.deadline);
        request.status = Status.Refunded;
        uint256 fee = request.fee;
        _balances[msg.sender] += fee;
        emit GenerationRefunded(requestId, msg.sender, fee);
    }

    /// @inheritdoc IGenerationMarket
    function withdraw(address to) external nonReentrant {
        if (to == address(0)) revert GenerationMarket__BadConfig();
        uint256 amount = _balances[msg.sender];
        if (amount == 0) revert GenerationMarket__NothingToWithdraw(msg.sender);
        _balances[msg.sender] = 0;
        emit Withdrawn(msg.sender, to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert GenerationMarket__TransferFailed(to, amount);
    }

    /// @inheritdoc IGenerationMarket
    function setPrice(Lane lane, uint256 newPrice) external onlyOwner {
        if (newPrice > MAX_PRICE) revert GenerationMarket__BadConfig();
        uint256 standardPrice = lane == Lane.Standard ? newPrice : _prices[Lane.Standard];
        uint256 fastPrice = lane == Lane.Fast ? newPrice : _prices[Lane.Fast];
        if (fastPrice < standardPrice) revert GenerationMarket__LanesOutOfOrder(standardPrice, fastPrice);
        _prices[lane] = newPrice;
        emit PriceSet(lane, newPrice);
    }

    /// @inheritdoc IGenerationMarket
    function setPrices(uint256 standardPrice, uint256 fastPrice) external onlyOwner {
        _setPrices(standardPrice, fastPrice);
    }

    /// @inheritdoc IGenerationMarket
    function setOperator(address newOperator) external onlyOwner {
        if (newOperator == address(0)) revert GenerationMarket__BadConfig();
        _operator = newOperator;
        emit OperatorSet(newOperator);
    }

    /// @inheritdoc IGenerationMarket
    function getRequest(uint256 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /// @inheritdoc IGenerationMarket
    function price(Lane lane) external view returns (uint256) {
        return _prices[lane];
    }

    /// @inheritdoc IGenerationMarket
    function balanceOf(address account) external view returns (uint256) {
        return _balances[account];
    }

    /// @inheritdoc IGenerationMarket
    function requestOfAsset(bytes32 asset) external view returns (uint256) {
        return _requestOfAsset[asset];
    }

    /// @inheritdoc IGenerationMarket
    function requestCount() external view returns (uint256) {
        return _count;
    }

    /// @notice Returns the operator.
    /// @return The operator's address.
    function operator() external view returns (address) {
        return _operator;
    }

    /// @dev Both lanes' prices within `MAX_PRICE` and the fast lane's not below the standard's.
    function _setPrices(uint256 standardPrice, uint256 fastPrice) private {
        if (standardPrice > MAX_PRICE || fastPrice > MAX_PRICE) revert GenerationMarket__BadConfig();
        if (fastPrice < standardPrice) revert GenerationMarket__LanesOutOfOrder(standardPrice, fastPrice);
        _prices[Lane.Standard] = standardPrice;
        _prices[Lane.Fast] = fastPrice;
        emit PriceSet(Lane.Standard, standardPrice);
        emit PriceSet(Lane.Fast, fastPrice);
    }

    function _checkRequest(uint256 length, uint32 steps, uint32 guidanceMilli, Lane lane) private view {
        if (length == 0 || length > MAX_PROMPT_BYTES) revert GenerationMarket__BadPrompt(length, MAX_PROMPT_BYTES);
        if (steps == 0 || steps > MAX_STEPS || guidanceMilli > MAX_GUIDANCE_MILLI) {
            revert GenerationMarket__BadParameters(steps, guidanceMilli);
        }
        uint256 lanePrice = _prices[lane];
        if (msg.value != lanePrice) revert GenerationMarket__WrongPayment(lane, msg.value, lanePrice);
    }

    /// @dev A request paid now may be fulfilled until then.
    function _deadline() private view returns (uint64) {
        return uint64(block.timestamp) + FULFILMENT_WINDOW;
    }

    function _store(address requester, Lane lane) private returns (uint256 requestId) {
        requestId = ++_count;
        _requests[requestId] = Request({
            requester: requester,
            fee: uint96(msg.value),
            deadline: _deadline(),
            status: Status.Open,
            lane: lane,
            assetsBefore: SafeCast.toUint48(PROVENANCE.assetCount()),
            asset: bytes32(0)
        });
    }

    function _openRequest(uint256 requestId) private view returns (Request storage request) {
        request = _requests[requestId];
        if (request.status == Status.None) revert GenerationMarket__UnknownRequest(requestId);
        if (request.status != Status.Open) revert GenerationMarket__NotOpen(requestId);
    }
}
