// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ILicenseGate} from "./ILicenseGate.sol";

/// @title ILicenseManager
/// @notice Licence terms for registered assets, licence purchases as ERC-1155 tokens, and
///         micro-licensing: payers prefund an escrow and sign EIP-712 cumulative vouchers for
///         per-use payments that anyone may settle in batches.
/// @dev Licence token ids encode their terms and expiry: `id = termsId << 64 | expiresAt`
///      (`expiresAt` = 2^64-1 for a perpetual licence), so licences with the same terms and expiry
///      are fungible and the expiry travels with the token.
///
///      Voucher (EIP-712, domain "Proofmint LicenseManager" version "2", this chain and address):
///      `Voucher(address payer,address service,bytes32 asset,uint256 termsId,uint256 cumulativeAmount,uint256 deadline)`.
///      `cumulativeAmount` is everything the payer owes on the channel (payer, service, termsId)
///      so far; settling moves `cumulativeAmount - settled` from the payer's escrow with that
///      service to the asset's revenue.
///
///      Escrow model: a payer keeps one escrow per (currency, service). The service is whoever
///      accepts the payer's vouchers and serves the uses before they settle (an API operator);
///      only vouchers that name it draw on its escrow, so a service that sees its own vouchers
///      sees everything its escrow is promised to, and a payer cannot promise one deposit to
///      two services that cannot see each other. Only the service settles its vouchers. A
///      withdrawal waits `WITHDRAWAL_DELAY` after
///      its request and settlement keeps drawing on the escrow meanwhile, so whoever holds
///      vouchers must settle within that delay; a request that is not withdrawn within
///      `WITHDRAWAL_WINDOW` after it unlocks expires (a new request starts a new delay).
interface ILicenseManager is ILicenseGate {
    /// @notice Why `settle` passed over a voucher without settling it.
    /// @param AlreadySettled The channel has settled exactly this amount (a replay, or someone
    ///        settled the voucher first).
    /// @param BelowSettled The channel has settled more (a newer voucher settled first).
    /// @param InsufficientEscrow The payer's escrow with the service cannot cover it (after the
    ///        vouchers before it in the batch).
    /// @param WalletRejected The voucher's wallet signature does not hold: an ERC-1271 wallet
    ///        refused it (or used more than `WALLET_CHECK_GAS` checking it), or it is no valid
    ///        signature of an account without code.
    enum SkipReason {
        AlreadySettled,
        BelowSettled,
        InsufficientEscrow,
        WalletRejected
    }

    /// @notice Terms as stored. Settlement reads only the first two slots.
    /// @param asset The licensed asset.
    /// @param currency address(0) for ETH, else an allow-listed ERC-20.
    /// @param pricePerUse Price of one metered use; 0 when the terms are not metered.
    /// @param price Price of a licence token; 0 for free licences.
    /// @param duration Licence lifetime in seconds from purchase; 0 for perpetual.
    /// @param derivativeRoyaltyBps Share of a derivative's revenue owed to the asset.
    /// @param commercialUse Whether the licence allows commercial use (enforced off chain).
    /// @param derivativesAllowed Whether the licence allows registering derivatives.
    /// @param active Whether new licences may be bought (existing ones stay valid).
    /// @param epoch The asset's record epoch when the terms were attached; terms of an earlier
    ///        epoch (a record since taken over by a batch claim) sell and license nothing.
    struct Terms {
        bytes32 asset;
        address currency;
        uint96 pricePerUse;
        uint128 price;
        uint64 duration;
        uint16 derivativeRoyaltyBps;
        bool commercialUse;
        bool derivativesAllowed;
        bool active;
        uint24 epoch;
    }

    /// @notice Input of `attachTerms`.
    struct TermsInput {
        address currency;
        uint128 price;
        uint96 pricePerUse;
        uint64 duration;
        uint16 derivativeRoyaltyBps;
        bool commercialUse;
        bool derivativesAllowed;
    }

    /// @notice A signed cumulative voucher as `settle` takes it. The signed EIP-712 message also
    ///         names the asset and the service; neither is repeated here (the terms fix the
    ///         asset, and a batch settles the vouchers of one service), 64 bytes of calldata fewer
    ///         per voucher. The struct is static (no per-voucher offsets in calldata).
    /// @param r With `vs`, an EOA payer's EIP-2098 compact signature (low s); ignored for a
    ///        voucher that has an entry in `settle`'s wallet signatures.
    /// @param vs The compact signature's s with v's parity in the top bit.
    struct Voucher {
        address payer;
        uint256 termsId;
        uint256 cumulativeAmount;
        uint256 deadline;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice The signature of a voucher whose payer signs otherwise than with a compact ECDSA
    ///         signature: an ERC-1271 wallet (any bytes), or a 65-byte r ‖ s ‖ v signature.
    /// @param index The voucher's position in the batch.
    /// @param signature The signature bytes.
    struct WalletSignature {
        uint256 index;
        bytes signature;
    }

    /// @notice A constructor argument is zero, out of range, or not wired to this contract.
    error LicenseManager__BadConfig();
    /// @notice The caller is not the creator of the asset the terms are for.
    error LicenseManager__NotCreator(bytes32 asset, address caller);
    /// @notice The asset is not registered.
    error LicenseManager__UnknownAsset(bytes32 asset);
    /// @notice No terms have this id.
    error LicenseManager__UnknownTerms(uint256 termsId);
    /// @notice The currency is not ETH and not on the allow-list.
    error LicenseManager__CurrencyNotAllowed(address currency);
    /// @notice A derivative share was set on terms that forbid derivatives, or exceeds the cap.
    error LicenseManager__BadDerivativeShare(uint16 shareBps, uint16 maxBps);
    /// @notice The terms are inactive; no new licence may be bought.
    error LicenseManager__TermsInactive(uint256 termsId);
    /// @notice The ETH sent differs from the amount due (or ETH was sent for an ERC-20 payment).
    error LicenseManager__WrongPayment(uint256 sent, uint256 due);
    /// @notice The ERC-20 moved a different amount than asked (fee-on-transfer tokens are refused).
    error LicenseManager__TransferMismatch(address currency, uint256 expected, uint256 received);
    /// @notice The amount is zero.
    error LicenseManager__ZeroAmount();
    /// @notice The recipient (or service) is the zero address.
    error LicenseManager__ZeroRecipient();
    /// @notice No withdrawal is pending, or its delay has not passed.
    error LicenseManager__WithdrawalLocked(uint256 unlockAt, uint256 nowTime);

    /// @notice The withdrawal request expired at `expiredAt` unwithdrawn; request again.
    error LicenseManager__WithdrawalExpired(uint256 expiredAt, uint256 nowTime);

    /// @notice Only the service named by a batch settles it (its escrows are what it draws on).
    error LicenseManager__NotService(address caller, address service);

    /// @notice The wallet signature at `position` is out of order or names no voucher of the batch.
    error LicenseManager__BadWalletSignature(uint256 position);

    /// @notice A batch carries more wallet signatures than `MAX_WALLET_SIGNATURES`.
    error LicenseManager__TooManyWalletSignatures(uint256 count, uint256 maxCount);
    /// @notice The batch is empty or longer than `MAX_VOUCHERS`.
    error LicenseManager__BadBatchSize(uint256 count, uint256 maxCount);
    /// @notice Voucher `index`'s cumulative amount is above `MAX_CUMULATIVE`.
    error LicenseManager__AmountTooLarge(uint256 index, uint256 cumulativeAmount, uint256 maxAmount);

    /// @notice Voucher `index` has passed its deadline.
    error LicenseManager__VoucherExpired(uint256 index, uint256 deadline, uint256 nowTime);
    /// @notice Voucher `index` names terms that do not exist.
    error LicenseManager__UnknownVoucherTerms(uint256 index, uint256 termsId);
    /// @notice Voucher `index` is for terms in another currency than the batch.
    error LicenseManager__CurrencyMismatch(uint256 index, address termsCurrency, address batchCurrency);
    /// @notice Voucher `index` is for terms without a per-use price.
    error LicenseManager__NotMetered(uint256 index, uint256 termsId);

    /// @notice Voucher `index` has a high-s (malleable) signature.
    error LicenseManager__MalleableSignature(uint256 index);
    /// @notice Voucher `index` has a signature that does not parse (length, v or zero address).
    error LicenseManager__BadSignature(uint256 index);
    /// @notice Voucher `index` was signed by `signer`, not by its payer.
    error LicenseManager__WrongSigner(uint256 index, address signer, address payer);


    /// @notice Only the provenance registry may consume licences.
    error LicenseManager__OnlyProvenanceRegistry(address caller);
    /// @notice The holder has no unit of licence `licenseId`.
    error LicenseManager__NoLicense(address holder, uint256 licenseId);
    /// @notice Licence `licenseId` is not a licence of asset `parent`.
    error LicenseManager__LicenseNotForAsset(uint256 licenseId, bytes32 parent);
    /// @notice Licence `licenseId` does not allow derivatives.
    error LicenseManager__DerivativesNotAllowed(uint256 licenseId);
    /// @notice The terms were attached to a record of their asset that a batch claim has since
    ///         taken over: they sell and license nothing.
    error LicenseManager__TermsSuperseded(uint256 termsId);

    /// @notice Licence `licenseId` expired at `expiresAt`.
    error LicenseManager__LicenseExpired(uint256 licenseId, uint256 expiresAt);
    /// @notice `sweepPayments` found nothing that arrived in the asset's receiver since the last sweep.
    error LicenseManager__NothingToSweep(bytes32 asset, address token);
    /// @notice The receiver landed elsewhere than `paymentReceiverOf` says (a chain whose CREATE2
    ///         differs from the EVM's): nothing is swept there.
    error LicenseManager__ReceiverMismatch(address expected, address deployed);

    /// @notice Emitted when terms are attached to an asset.
    event TermsAttached(uint256 indexed termsId, bytes32 indexed asset, address indexed currency, Terms terms);
    /// @notice Emitted when terms are (de)activated.
    event TermsActiveSet(uint256 indexed termsId, bool active);
    /// @notice Emitted when a licence is bought.
    event LicensePurchased(
        uint256 indexed termsId, address indexed buyer, address indexed to, uint256 licenseId, uint256 price, uint64 expiresAt
    );
    /// @notice Emitted when a licence unit is burnt to register a derivative of `parent`.
    event LicenseConsumed(uint256 indexed licenseId, address indexed holder, bytes32 indexed parent);
    /// @notice Emitted when a payer adds to its escrow with a service.
    /// @param balance The escrow's balance after the deposit, as stored.
    event EscrowDeposited(
        address indexed payer, address indexed currency, address indexed service, uint256 amount, uint256 balance
    );

    /// @notice Emitted when a payer asks to withdraw escrow (replacing an earlier request).
    event WithdrawalRequested(
        address indexed payer, address indexed currency, address indexed service, uint256 amount, uint64 unlockAt
    );

    /// @notice Emitted when a payer cancels its pending withdrawal.
    event WithdrawalCancelled(address indexed payer, address indexed currency, address indexed service);

    /// @notice Emitted when escrow leaves the contract to `to`.
    event EscrowWithdrawn(
        address indexed payer, address indexed currency, address indexed service, address to, uint256 amount
    );

    /// @notice Emitted for each settled voucher.
    /// @dev The asset is the terms' asset. What this voucher paid is `cumulativeAmount` minus the
    ///      channel's previous `cumulativeAmount` (0 before its first settlement); the assets'
    ///      totals per batch are in the splitter's `RevenueAdded` events.
    ///      The service is the batch's (`BatchSettled`, emitted after the batch's vouchers).
    event VoucherSettled(address indexed payer, uint256 indexed termsId, uint256 cumulativeAmount);

    /// @notice Emitted for each voucher `settle` passed over; nothing of it was settled.
    event VoucherSkipped(address indexed payer, uint256 indexed termsId, uint256 cumulativeAmount, SkipReason reason);

    /// @notice Emitted once per `settle`, after its vouchers' events.
    /// @param service The service whose vouchers (and escrows) the batch settled.
    /// @param currency The batch's currency.
    /// @param settled How many vouchers settled.
    /// @param skipped How many were skipped.
    /// @param total What moved from escrow to revenue.
    event BatchSettled(
        address indexed service, address indexed currency, uint256 settled, uint256 skipped, uint256 total
    );
    /// @notice Emitted when a batch claim takes over `asset`'s record: terms of earlier epochs
    ///         are void from now on.
    event AssetEpochAdvanced(bytes32 indexed asset, uint256 epoch);

    /// @notice Emitted when the owner adds or removes an ERC-20 from the allow-list.
    event CurrencyAllowed(address indexed currency, bool allowed);
    /// @notice `amount` of `token` paid to the asset's receiver went to the asset's revenue.
    event PaymentsSwept(bytes32 indexed asset, address indexed token, address receiver, uint256 amount);

    /// @notice Attaches licence terms to an asset.
    /// @dev Only the asset's creator. The currency must be ETH or allow-listed; a derivative share
    ///      requires `derivativesAllowed` and is capped by `MAX_DERIVATIVE_ROYALTY_BPS`.
    /// @param asset The asset.
    /// @param input The terms.
    /// @return termsId The new terms id (ids start at 1).
    function attachTerms(bytes32 asset, TermsInput calldata input) external returns (uint256 termsId);

    /// @notice Stops or resumes sales under some terms; licences already sold stay valid.
    /// @dev Only the asset's creator. Vouchers on inactive terms still settle: they pay for uses
    ///      already served (services stop accepting new ones when terms go inactive), and a
    ///      payer's promise does not lapse because the creator stopped selling.
    /// @param termsId The terms.
    /// @param active The new state.
    function setTermsActive(uint256 termsId, bool active) external;

    /// @notice Buys one licence under `termsId` and mints it to `to`.
    /// @dev ETH terms: send exactly `price`. ERC-20 terms: approve this contract for `price`; the
    ///      tokens go straight to the royalty splitter and must arrive in full. Mints with the
    ///      ERC-1155 acceptance check, last.
    /// @param termsId The terms.
    /// @param to Receiver of the licence token.
    /// @return licenseId The licence token id.
    function purchase(uint256 termsId, address to) external payable returns (uint256 licenseId);

    /// @notice Adds to the caller's escrow with `service` in `currency`.
    /// @param currency address(0) for ETH (send `amount`), else an allow-listed ERC-20.
    /// @param service The service whose vouchers may draw on it (not the zero address).
    /// @param amount The amount.
    function deposit(address currency, address service, uint256 amount) external payable;

    /// @notice Asks to withdraw `amount` of escrow after `WITHDRAWAL_DELAY`; replaces an earlier
    ///         request. The request expires `WITHDRAWAL_WINDOW` after it unlocks.
    /// @param currency The escrow currency.
    /// @param service The service of the escrow.
    /// @param amount The amount (capped at the balance when withdrawn).
    function requestWithdrawal(address currency, address service, uint256 amount) external;

    /// @notice Cancels the caller's pending withdrawal.
    /// @param currency The escrow currency.
    /// @param service The service of the escrow.
    function cancelWithdrawal(address currency, address service) external;

    /// @notice Withdraws the requested escrow once its delay has passed and before it expires.
    /// @dev Pays min(requested, balance): settlements during the delay come first.
    /// @param currency The escrow currency.
    /// @param service The service of the escrow.
    /// @param to Receiver of the funds.
    function withdrawEscrow(address currency, address service, address to) external;

    /// @notice Settles a batch of vouchers of one service in one currency. Only the service may
    ///         call: it alone knows which vouchers it served uses for (a payer settling vouchers
    ///         of its own making against the service's escrow would empty it first).
    /// @dev A voucher that has nothing left to settle (its channel settled as much or more: a
    ///      replay, or a newer voucher settled first), that its payer's escrow with the service
    ///      cannot cover, or whose ERC-1271 wallet refuses its signature is passed over with
    ///      `VoucherSkipped`: nothing outside the service's control makes a batch fail. Any
    ///      other bad voucher (expired, unknown or unmetered terms, another currency, an amount
    ///      above `MAX_CUMULATIVE`, a bad compact signature) reverts the whole call, naming its
    ///      index: those are the service's to leave out. At most `MAX_WALLET_SIGNATURES`. A skipped voucher is not checked
    ///      further. Consecutive vouchers of one asset are credited once, of one payer touch its
    ///      escrow once, of one terms id read the terms once: sort by asset, then payer.
    /// @param currency The currency of every voucher's terms.
    /// @param service The service every voucher names (and whose escrows they draw on).
    /// @param vouchers At most `MAX_VOUCHERS` vouchers.
    /// @param walletSignatures The signatures of vouchers not signed compactly by an EOA, in
    ///        ascending voucher index, each used by the voucher it names.
    function settle(
        address currency,
        address service,
        Voucher[] calldata vouchers,
        WalletSignature[] calldata walletSignatures
    ) external;

    /// @notice Adds or removes an ERC-20 from the allow-list.
    /// @dev Only the owner. Removal blocks new terms, purchases and deposits; never withdrawals.
    /// @param currency The token.
    /// @param allowed The new state.
    function setCurrencyAllowed(address currency, bool allowed) external;

    /// @notice Credits everything the asset's receiver holds in `token` (push payments: x402
    ///         `exact` payments, EIP-3009 transfers to `paymentReceiverOf(asset)`) to the asset's
    ///         revenue in the royalty splitter. Anyone may call: the receiver's address binds
    ///         those payments to the asset, so who sweeps, or who submitted a payment, changes
    ///         nothing about where it goes.
    /// @dev Deploys the receiver (CREATE2, salted with the asset) on the first sweep. The token
    ///      must be allow-listed (until it is, payments wait in the receiver); what the splitter
    ///      received is credited, never more than the receiver sent. Like vouchers, payments for
    ///      an asset whose record was taken over go to its current split: they paid for uses
    ///      already served.
    /// @param asset The registered asset.
    /// @param token The ERC-20 paid.
    /// @return amount What was credited.
    function sweepPayments(bytes32 asset, address token) external returns (uint256 amount);

    /// @notice The address that receives push payments for `asset`, in any token: where an x402
    ///         `exact` offer for the asset says to pay. It exists once first swept, but can be
    ///         paid before.
    /// @param asset The asset.
    /// @return receiver The receiver's address.
    function paymentReceiverOf(bytes32 asset) external view returns (address receiver);

    /// @notice Returns stored terms; reverts for an unknown id.
    /// @param termsId The terms.
    /// @return The terms.
    function getTerms(uint256 termsId) external view returns (Terms memory);

    /// @notice Returns an asset's record epoch (0, plus one per takeover by a batch claim).
    /// @param asset The asset.
    /// @return The epoch terms must carry to sell or license.
    function assetEpoch(bytes32 asset) external view returns (uint256);

    /// @notice Returns the number of terms ever attached (the highest id).
    /// @return The count.
    function termsCount() external view returns (uint256);

    /// @notice Returns a payer's escrow with a service in a currency.
    /// @param payer The payer.
    /// @param currency The currency.
    /// @param service The service.
    /// @return balance Escrow not yet settled or withdrawn.
    /// @return pendingWithdrawal The requested withdrawal.
    /// @return unlockAt When the request may be withdrawn (0 when none); it expires
    ///         `WITHDRAWAL_WINDOW` later.
    function escrowOf(address payer, address currency, address service)
        external
        view
        returns (uint256 balance, uint256 pendingWithdrawal, uint64 unlockAt);

    /// @notice Returns the cumulative amount settled on channel (payer, service, termsId).
    /// @param payer The payer.
    /// @param service The service.
    /// @param termsId The terms.
    /// @return The settled amount.
    function settledOf(address payer, address service, uint256 termsId) external view returns (uint256);

    /// @notice Returns whether a currency may be used (ETH always may).
    /// @param currency The currency.
    /// @return True when allowed.
    function isCurrencyAllowed(address currency) external view returns (bool);

    /// @notice Returns the EIP-712 digest a payer signs for a voucher.
    /// @param payer The payer.
    /// @param service The service.
    /// @param asset The asset.
    /// @param termsId The terms.
    /// @param cumulativeAmount The cumulative amount.
    /// @param deadline The deadline.
    /// @return The digest.
    function voucherDigest(
        address payer,
        address service,
        bytes32 asset,
        uint256 termsId,
        uint256 cumulativeAmount,
        uint256 deadline
    )
        external
        view
        returns (bytes32);

    /// @notice Splits a licence token id into its terms id and expiry.
    /// @param licenseId The licence token id.
    /// @return termsId The terms.
    /// @return expiresAt The expiry (2^64-1 for perpetual).
    function decodeLicenseId(uint256 licenseId) external pure returns (uint256 termsId, uint64 expiresAt);
}
