// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IRoyaltySplitter
/// @notice The vault of proofmint: holds payers' escrow (for the licence manager) and asset
///         revenue, splits revenue among the people behind each asset, and pays them by pull.
/// @dev Accounting per currency:
///      `reserve + Σ pending revenue + Σ balances + Σ unclaimed data pools + dust
///       == deposited - withdrawn`,
///      and the contract's token balance covers the right-hand side.
///
///      Splitting is cumulative per (asset record, currency): after `T` has been distributed in
///      total, each role has received exactly `floor(T * bps / 10_000)` (the fee on what the
///      asset received itself, see below). Rounding never accumulates over
///      many small payments and never moves one role's share to another; the remainder (fewer wei
///      than roles) is accounted as dust and stays in the contract.
///
///      Roles of an asset: protocol fee (treasury), model developer (current developer of the
///      model version), training-data originators (the model's data pool, claimed by Merkle
///      proof), each parent (its share lands in the parent's pending revenue and is split again
///      when the parent is distributed: royalty stacks need no loops), creator (the rest).
///      The protocol fee is charged once per payment: a parent's share arrives as inherited
///      revenue, and the parent's distribution gives the fee's part of it to the parent's creator.
interface IRoyaltySplitter {
    /// @notice A constructor argument is zero or not wired to this contract (or to the same
    ///         model registry as the provenance registry).
    error RoyaltySplitter__BadConfig();
    /// @notice Only the licence manager may move escrow.
    error RoyaltySplitter__OnlyLicenseManager(address caller);
    /// @notice The ETH sent differs from the amount (or ETH was sent with an ERC-20).
    error RoyaltySplitter__WrongPayment(uint256 sent, uint256 due);
    /// @notice The contract holds fewer tokens than its liabilities plus the amount funded.
    error RoyaltySplitter__Underfunded(address currency, uint256 balance, uint256 required);
    /// @notice The ERC-20 moved a different amount than asked (fee-on-transfer tokens are refused).
    error RoyaltySplitter__TransferMismatch(address currency, uint256 expected, uint256 received);
    /// @notice The currency is not ETH and not allow-listed by the licence manager.
    error RoyaltySplitter__CurrencyNotAllowed(address currency);
    /// @notice The asset is not registered.
    error RoyaltySplitter__UnknownAsset(bytes32 asset);
    /// @notice The amount is zero.
    error RoyaltySplitter__ZeroAmount();
    /// @notice The recipient is the zero address.
    error RoyaltySplitter__ZeroRecipient();
    /// @notice The reserve holds less than asked.
    error RoyaltySplitter__ReserveExceeded(address currency, uint256 amount, uint256 reserve);
    /// @notice The credited amounts do not add up to the total, or the arrays differ in length.
    error RoyaltySplitter__BadCredit();
    /// @notice The asset has no pending revenue in this currency.
    error RoyaltySplitter__NothingToDistribute(bytes32 asset, address currency);
    /// @notice The caller has no balance in this currency.
    error RoyaltySplitter__NothingToWithdraw(address account, address currency);
    /// @notice The (originator, weight) leaf is not under the model's data root.
    error RoyaltySplitter__InvalidDataProof(uint256 modelId, address originator);
    /// @notice The weight exceeds `WEIGHT_SCALE`.
    error RoyaltySplitter__BadWeight(uint256 weight);
    /// @notice Nothing new is owed to this originator.
    error RoyaltySplitter__NothingToClaim(uint256 modelId, address originator);
    /// @notice The ETH transfer to the recipient failed.
    error RoyaltySplitter__EthTransferFailed(address to, uint256 amount);

    /// @notice Emitted when escrow enters the reserve.
    event ReserveFunded(address indexed currency, uint256 amount);
    /// @notice Emitted when escrow leaves the reserve to `to`.
    event ReserveReleased(address indexed currency, address indexed to, uint256 amount);
    /// @notice Emitted when an asset's pending revenue grows (purchase, settlement, direct payment).
    event RevenueAdded(bytes32 indexed asset, address indexed currency, uint256 amount);
    /// @notice Emitted when an asset's pending revenue is split.
    event Distributed(
        bytes32 indexed asset,
        address indexed currency,
        uint256 amount,
        uint256 creatorShare,
        uint256 developerShare,
        uint256 dataShare,
        uint256 parentsShare,
        uint256 feeShare
    );
    /// @notice Emitted when a parent's share lands in the parent's pending revenue.
    event ParentCredited(bytes32 indexed asset, bytes32 indexed parent, address indexed currency, uint256 amount);
    /// @notice Emitted when an originator's data share moves to its balance.
    event DataShareClaimed(uint256 indexed modelId, address indexed originator, address indexed currency, uint256 amount);
    /// @notice Emitted when an account withdraws.
    event Withdrawn(address indexed account, address indexed currency, address to, uint256 amount);

    /// @notice Adds escrow to the reserve. Only the licence manager, after moving the tokens here.
    /// @param currency The currency.
    /// @param amount The amount (ETH: sent with the call).
    function fundReserve(address currency, uint256 amount) external payable;

    /// @notice Adds a purchase price to an asset's pending revenue. Only the licence manager.
    /// @param currency The currency.
    /// @param asset The asset.
    /// @param amount The amount (ETH: sent with the call).
    function fundRevenue(address currency, bytes32 asset, uint256 amount) external payable;

    /// @notice Moves settled vouchers' value from the reserve to assets. Only the licence manager.
    /// @param currency The currency.
    /// @param assets The assets, one entry per aggregated run.
    /// @param amounts The amount for each entry.
    /// @param total The sum of `amounts`.
    function creditFromReserve(address currency, bytes32[] calldata assets, uint256[] calldata amounts, uint256 total)
        external;

    /// @notice Pays escrow out of the reserve. Only the licence manager.
    /// @param currency The currency.
    /// @param to The payer's chosen receiver.
    /// @param amount The amount.
    function releaseReserve(address currency, address to, uint256 amount) external;

    /// @notice Pays an asset directly (tips, off-chain sales).
    /// @param asset The registered asset.
    /// @param currency ETH (send `amount`) or an allow-listed ERC-20 (approve this contract).
    /// @param amount The amount.
    function pay(bytes32 asset, address currency, uint256 amount) external payable;

    /// @notice Splits an asset's pending revenue in `currency` among its roles. Anyone may call.
    /// @param asset The asset.
    /// @param currency The currency.
    function distribute(bytes32 asset, address currency) external;

    /// @notice Moves what a training-data originator is owed from a model's data pool to its balance.
    /// @dev Anyone may call for any originator. The leaf is
    ///      `keccak256(bytes.concat(keccak256(abi.encode(originator, weight))))` under the model's
    ///      `dataRoot`, with sorted-pair inner nodes (OpenZeppelin's standard Merkle tree), and
    ///      `weight` in parts of `WEIGHT_SCALE`. Claims are counted per leaf: an originator listed
    ///      twice with different weights claims each; the same (originator, weight) listed twice
    ///      is one leaf and paid once. Claims never exceed the pool, so a wrong root cannot reach
    ///      other money.
    /// @param modelId The model version.
    /// @param currency The currency.
    /// @param originator The originator.
    /// @param weight The originator's weight.
    /// @param proof The Merkle proof.
    function claimDataShare(
        uint256 modelId,
        address currency,
        address originator,
        uint256 weight,
        bytes32[] calldata proof
    ) external;

    /// @notice Withdraws the caller's whole balance in `currency` to `to`.
    /// @param currency The currency.
    /// @param to The receiver.
    function withdraw(address currency, address to) external;

    /// @notice Returns an account's withdrawable balance.
    /// @param account The account.
    /// @param currency The currency.
    /// @return The balance.
    function balanceOf(address account, address currency) external view returns (uint256);

    /// @notice Returns an asset's revenue not yet distributed (its own and inherited).
    /// @param asset The asset.
    /// @param currency The currency.
    /// @return The pending amount.
    function pendingRevenueOf(bytes32 asset, address currency) external view returns (uint256);

    /// @notice Returns the part of an asset's pending revenue that derivatives passed to it
    ///         (split without the protocol fee, which they paid already).
    /// @param asset The asset.
    /// @param currency The currency.
    /// @return The pending inherited amount.
    function pendingInheritedOf(bytes32 asset, address currency) external view returns (uint256);

    /// @notice Returns everything distributed for an asset's current record (0 for an unknown
    ///         asset; it starts again from 0 when a batch claim takes the record over).
    /// @param asset The asset.
    /// @param currency The currency.
    /// @return The cumulative amount.
    function distributedOf(bytes32 asset, address currency) external view returns (uint256);

    /// @notice Returns a model's data pool in a currency.
    /// @param modelId The model version.
    /// @param currency The currency.
    /// @return total Everything credited to the pool.
    /// @return paid Everything claimed from it.
    function dataPoolOf(uint256 modelId, address currency) external view returns (uint256 total, uint256 paid);

    /// @notice Returns what an originator's leaf has claimed from a model's data pool.
    /// @param modelId The model version.
    /// @param currency The currency.
    /// @param originator The originator.
    /// @param weight The leaf's weight.
    /// @return The claimed amount.
    function dataClaimedOf(uint256 modelId, address currency, address originator, uint256 weight)
        external
        view
        returns (uint256);

    /// @notice Returns the licence manager's escrow reserve.
    /// @param currency The currency.
    /// @return The reserve.
    function reserveOf(address currency) external view returns (uint256);

    /// @notice Returns the accounted rounding remainder.
    /// @param currency The currency.
    /// @return The dust.
    function dustOf(address currency) external view returns (uint256);

    /// @notice Returns the totals that ever came in and went out.
    /// @param currency The currency.
    /// @return deposited Everything that came in.
    /// @return withdrawn Everything that went out.
    function totalsOf(address currency) external view returns (uint256 deposited, uint256 withdrawn);
}
