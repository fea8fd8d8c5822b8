// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IGenerationMarket
/// @notice Paid generation requests, oracle style: anyone pays the price of a lane to ask for an
///         image;
///         the operator's agents generate, curate and register it in the provenance registry and
///         fulfil the request with the registered asset; a request not fulfilled in time is
///         refunded to the requester.
/// @dev Money only ever moves by pull: fulfilment credits the operator, a refund credits the
///      requester, and each withdraws its own balance. The prompt and parameters travel in the
///      `GenerationRequested` event (the agents read them there); storage keeps only what the
///      money needs. An asset fulfils at most one request, so one image is never sold twice,
///      and it must have been registered after the request was paid, so an old image cannot be
///      passed off as the answer. What the requester receives on chain is the record tying its
///      request to the asset (`getRequest`, `requestOfAsset`, `GenerationFulfilled`); the
///      operator's agents register the asset in the requester's name when the requester has
///      approved them as registrar, and then the requester also holds the token and the creator
///      share. A batch claim that takes a record over gives it a new `seq`; the operator is
///      trusted (as for the prompt) not to fulfil with such a record of an older image.
///      Lanes: each request names a priority lane, `Standard` or `Fast`, and pays exactly that
///      lane's price; the agents serve the fast lane first without starving the standard one. The
///      chain records the lane and its price; how much sooner a fast request is served is the
///      operator's promise, not the chain's. Invariant: the fast lane never costs less than the
///      standard lane (`price(Fast) >= price(Standard)`, equal allowed), checked at deploy and on
///      every price change; `setPrices` moves both in one call so no order of changes is needed.
///      A request pays the exact price, so a price change mined before a request makes it revert
///      (`WrongPayment`) rather than charge it more or less than the requester sent.
interface IGenerationMarket {
    /// @notice Where a request stands.
    enum Status {
        None,
        Open,
        Fulfilled,
        Refunded
    }

    /// @notice A request's priority lane (the agents serve `Fast` first, never starving `Standard`).
    enum Lane {
        Standard,
        Fast
    }

    /// @notice A request's stored part (the prompt is in its event).
    /// @param requester Who paid; gets the refund if the request lapses.
    /// @param fee What was paid (the price at the time).
    /// @param deadline Until when the operator may fulfil; after it, the requester may refund.
    /// @param status Open, fulfilled or refunded.
    /// @param lane The lane it was paid for.
    /// @param assetsBefore The provenance registry's `assetCount()` when the request was paid:
    ///        only an asset with a `seq` at or above it can fulfil the request.
    /// @param asset The registered asset that fulfilled it (0 until then).
    struct Request {
        address requester;
        uint96 fee;
        uint64 deadline;
        Status status;
        Lane lane;
        uint48 assetsBefore;
        bytes32 asset;
    }

    /// @notice The prompt is empty or longer than `MAX_PROMPT_BYTES`.
    error GenerationMarket__BadPrompt(uint256 length, uint256 maxLength);
    /// @notice Steps or guidance are outside what the operator's models take.
    error GenerationMarket__BadParameters(uint256 steps, uint256 guidanceMilli);
    /// @notice The value sent is not the current price of the request's lane.
    error GenerationMarket__WrongPayment(Lane lane, uint256 sent, uint256 price);
    /// @notice The prices would make the fast lane cheaper than the standard lane.
    error GenerationMarket__LanesOutOfOrder(uint256 standardPrice, uint256 fastPrice);
    /// @notice No request has this id.
    error GenerationMarket__UnknownRequest(uint256 requestId);
    /// @notice The request is fulfilled or refunded already.
    error GenerationMarket__NotOpen(uint256 requestId);
    /// @notice Only the operator fulfils.
    error GenerationMarket__NotOperator(address caller);
    /// @notice The fulfilment deadline has passed: the request can only be refunded now.
    error GenerationMarket__Expired(uint256 requestId, uint256 deadline);
    /// @notice The asset is not registered in the provenance registry.
    error GenerationMarket__AssetNotRegistered(bytes32 asset);
    /// @notice The asset fulfilled another request already.
    error GenerationMarket__AssetAlreadyUsed(bytes32 asset, uint256 requestId);

    /// @notice The asset was registered before the request was paid (`seq` below `assetsBefore`).
    error GenerationMarket__AssetPredatesRequest(bytes32 asset, uint256 seq, uint256 assetsBefore);
    /// @notice Only the requester may ask for the refund.
    error GenerationMarket__NotRequester(address caller);
    /// @notice The request may still be fulfilled until its deadline.
    error GenerationMarket__NotExpired(uint256 requestId, uint256 deadline);
    /// @notice The caller has nothing to withdraw.
    error GenerationMarket__NothingToWithdraw(address account);
    /// @notice The receiver refused the ETH.
    error GenerationMarket__TransferFailed(address to, uint256 amount);
    /// @notice A zero address, or a price or window out of range.
    error GenerationMarket__BadConfig();

    /// @notice A paid request for one image in `lane`. `guidanceMilli` is the guidance scale times
    ///         1,000.
    event GenerationRequested(
        uint256 indexed requestId,
        address indexed requester,
        Lane lane,
        uint256 fee,
        uint64 deadline,
        uint64 seed,
        uint32 steps,
        uint32 guidanceMilli,
        string prompt
    );
    /// @notice The operator delivered `asset` for the request and earned its fee.
    event GenerationFulfilled(uint256 indexed requestId, bytes32 indexed asset, address indexed operator, uint256 fee);
    /// @notice A lapsed request's fee was credited back to its requester.
    event GenerationRefunded(uint256 indexed requestId, address indexed requester, uint256 fee);
    /// @notice The price of a request in `lane` changed (requests already paid keep theirs).
    event PriceSet(Lane indexed lane, uint256 price);
    /// @notice The operator (who fulfils and earns the fees) changed.
    event OperatorSet(address indexed operator);
    /// @notice `account` withdrew its balance to `to`.
    event Withdrawn(address indexed account, address indexed to, uint256 amount);

    /// @notice Pays the lane's price and asks for one image; the agents pick the request up from
    ///         the event.
    /// @dev `msg.value` must equal `price(lane)` exactly: a price changed before the request is
    ///      mined makes it revert, never charge another amount. A `lane` outside the enum is
    ///      refused by the ABI decoder (a revert without data).
    /// @param prompt The text prompt (1 to `MAX_PROMPT_BYTES` bytes).
    /// @param seed The generation seed.
    /// @param steps Denoising steps (1 to `MAX_STEPS`).
    /// @param guidanceMilli Guidance scale times 1,000 (at most `MAX_GUIDANCE_MILLI`).
    /// @param lane The priority lane paid for.
    /// @return requestId The new request's id (ids start at 1).
    function requestGeneration(string calldata prompt, uint64 seed, uint32 steps, uint32 guidanceMilli, Lane lane)
        external
        payable
        returns (uint256 requestId);

    /// @notice The operator delivers a registered asset for an open request before its deadline
    ///         and is credited the request's fee.
    /// @dev The asset must have been registered after the request and fulfil no other request.
    /// @param requestId The request.
    /// @param asset The content digest of the registered asset.
    function fulfill(uint256 requestId, bytes32 asset) external;

    /// @notice The requester takes the fee of a request that lapsed unfulfilled back (credited;
    ///         withdraw to receive it).
    /// @param requestId The request.
    function refund(uint256 requestId) external;

    /// @notice Withdraws the caller's whole balance (fees earned, refunds) to `to`.
    /// @param to The receiver.
    function withdraw(address to) external;

    /// @notice Sets the price of new requests in one lane (owner only).
    /// @dev Reverts with `LanesOutOfOrder` if the fast lane would then cost less than the standard
    ///      lane: to raise both, raise `Fast` first (or use `setPrices`); to lower both, lower
    ///      `Standard` first.
    /// @param lane The lane.
    /// @param newPrice The price in wei (at most `MAX_PRICE`).
    function setPrice(Lane lane, uint256 newPrice) external;

    /// @notice Sets the price of new requests in both lanes at once (owner only).
    /// @dev Emits `PriceSet` for each lane. `fastPrice` must be at least `standardPrice`.
    /// @param standardPrice The standard lane's price in wei (at most `MAX_PRICE`).
    /// @param fastPrice The fast lane's price in wei (at most `MAX_PRICE`).
    function setPrices(uint256 standardPrice, uint256 fastPrice) external;

    /// @notice Sets the operator (owner only).
    /// @param newOperator The operator's address (not zero).
    function setOperator(address newOperator) external;

    /// @notice Returns a request.
    /// @param requestId The request.
    /// @return The stored request (status `None` for an unknown id).
    function getRequest(uint256 requestId) external view returns (Request memory);

    /// @notice Returns the price of a new request in `lane`.
    /// @param lane The lane.
    /// @return The price in wei.
    function price(Lane lane) external view returns (uint256);

    /// @notice Returns what `account` may withdraw.
    /// @param account The account.
    /// @return The balance in wei.
    function balanceOf(address account) external view returns (uint256);

    /// @notice Returns the request an asset fulfilled (0 if none).
    /// @param asset The asset's content digest.
    /// @return The request id.
    function requestOfAsset(bytes32 asset) external view returns (uint256);

    /// @notice Returns the number of requests made.
    /// @return The count (the newest request's id).
    function requestCount() external view returns (uint256);
}
