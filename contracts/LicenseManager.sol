// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ILicenseGate} from "./interfaces/ILicenseGate.sol";
import {ILicenseManager} from "./interfaces/ILicenseManager.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {IRoyaltySplitter} from "./interfaces/IRoyaltySplitter.sol";
import {PaymentReceiver} from "./PaymentReceiver.sol";

/// @notice What the licence manager reads of the provenance registry beyond its interface.
interface IProvenanceWiring {
    function LICENSE_MANAGER() external view returns (address);
    function tokenURI(uint256 tokenId) external view returns (string memory);
}

/// @title LicenseManager
/// @notice Licence terms, ERC-1155 licences and micro-licensing vouchers (see {ILicenseManager}).
/// @dev Note:
///      - Holds no funds: every payment goes straight to the royalty splitter, which keeps the
///        escrow reserve; this contract keeps the per-payer escrow ledger and the channels.
///      - `commercialUse` is recorded for off-chain enforcement; nothing here can see a use.
///      - Terms belong to the record of their asset they were attached under: when a batch claim
///        takes the record over (a squatter's, say), they neither sell nor license derivatives
///        again. Licences bought before stay valid for what they were bought for but cannot
///        register derivatives; vouchers on such terms still settle (to the asset's current
///        split): they pay for uses already served.
///      - A voucher is only as good as the payer's escrow with the service it names: a service
///        must settle (or stop serving) before a payer's withdrawal delay runs out, and should
///        count a pending withdrawal as gone.
///      - Only the service a batch names settles it: a payer cannot settle vouchers of its own
///        making against the escrow the service relies on, and nobody can front-run a batch.
///        Within a batch, what the service cannot control (a voucher settled already, an
///        escrow that no longer covers, a wallet that changed its mind) is skipped with an
///        event, never a revert.
///      - Three channels of one payer and service share a storage word (85 bits each), so a
///        channel holds at most `MAX_CUMULATIVE`.
///      - ERC-20s are allow-listed by the owner; fee-on-transfer tokens are refused by a balance
///        check, tokens without a return value work through SafeERC20.
contract LicenseManager is ILicenseManager, ERC1155, EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Most vouchers one `settle` call takes.
    /// @dev Sized by the dearest batch: every voucher from a different payer, for a different asset
    ///      with no pending revenue, opening a new channel (a fresh channel word, a fresh revenue
    ///      slot, cold terms and escrow, a signature recovery): under half of a 30M block at 192
    ///      (bench/gas.py `settle_gas_worst_192`; a test keeps it under 15M).
    uint256 public constant MAX_VOUCHERS = 192;
    /// @notice Highest derivative royalty share terms may ask (50%).
    uint16 public constant MAX_DERIVATIVE_ROYALTY_BPS = 5_000;
    /// @notice Shortest withdrawal delay the constructor accepts.
    uint64 public constant MIN_WITHDRAWAL_DELAY = 1 hours;
    /// @notice Longest withdrawal delay the constructor accepts.
    uint64 public constant MAX_WITHDRAWAL_DELAY = 30 days;
    /// @notice How long an unlocked withdrawal request stays usable before it expires.
    uint64 public constant WITHDRAWAL_WINDOW = 7 days;
    /// @notice Channels of one payer and service that share a storage word (terms ids 3k..3k+2).
    uint256 public constant CHANNELS_PER_WORD = 3;
    uint256 private constant _CHANNEL_BITS = 85;
    /// @notice Largest cumulative amount a channel holds (2^85 - 1: 3.8e25 base units, 38 million
    ///         of an 18-decimal token); a voucher above it reverts the batch.
    uint256 public constant MAX_CUMULATIVE = (1 << _CHANNEL_BITS) - 1;
    /// @notice Gas an ERC-1271 payer's `isValidSignature` may use in a settlement (a wallet that
    ///         burns more is treated as refusing).
    uint256 public constant WALLET_CHECK_GAS = 100_000;
    /// @notice Most wallet signatures one `settle` call takes: with each wallet burning its
    ///         `WALLET_CHECK_GAS`, the dearest batch stays under half a 30M block.
    uint256 public constant MAX_WALLET_SIGNATURES = 24;
    /// @notice Expiry encoded in the id of a perpetual licence.
    uint64 public constant PERPETUAL = type(uint64).max;
    /// @notice EIP-712 type hash of a voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,address service,bytes32 asset,uint256 termsId,uint256 cumulativeAmount,uint256 deadline)"
    );

    /// @notice The provenance registry whose assets are licensed.
    IProvenanceRegistry public immutable PROVENANCE;
    /// @notice The vault that holds escrow and revenue.
    IRoyaltySplitter public immutable SPLITTER;
    /// @notice Seconds between a withdrawal request and the withdrawal.
    uint64 public immutable WITHDRAWAL_DELAY;

    /// @dev A pending withdrawal request: how much, and when it unlocks (0: none).
    struct Withdrawal {
        uint256 amount;
        uint64 unlockAt;
    }

    uint256 private _termsCount;
    mapping(uint256 termsId => Terms) private _terms;
    /// @dev Escrow balances keyed currency, service, payer, each in a word of its own (settlement
    ///      writes a balance without reading anything beside it); a settlement batch (one
    ///      currency and service) holds the inner mapping and hashes one key per payer.
    mapping(address currency => mapping(address service => mapping(address payer => uint256))) private _escrow;
    mapping(address currency => mapping(address service => mapping(address payer => Withdrawal))) private
        _withdrawals;
    /// @dev Channels keyed service, payer, then terms id / 3: three channels of one payer share
    ///      a word (85 bits each, terms id % 3 selects which), so a payer's channels on terms
    ///      attached together cost one fresh word per three.
    mapping(address service => mapping(address payer => mapping(uint256 termsGroup => uint256))) private _channels;
    mapping(address currency => bool) private _allowed;
    mapping(bytes32 asset => uint24 epoch) private _assetEpochs;

    /// @param provenance The provenance registry; must name this contract as its licence manager.
    /// @param splitter The royalty splitter (deployed next; its constructor checks the wiring).
    /// @param withdrawalDelay Seconds a payer waits between requesting and withdrawing escrow.
    /// @param initialOwner Manages the ERC-20 allow-list.
    constructor(IProvenanceRegistry provenance, IRoyaltySplitter splitter, uint64 withdrawalDelay, address initialOwner)
        ERC1155("")
        EIP712("Proofmint LicenseManager", "2")
        Ownable(initialOwner)
    {
        if (
            address(splitter) == address(0) || withdrawalDelay < MIN_WITHDRAWAL_DELAY
                || withdrawalDelay > MAX_WITHDRAWAL_DELAY
                || IProvenanceWiring(address(provenance)).LICENSE_MANAGER() != address(this)
        ) revert LicenseManager__BadConfig();
        PROVENANCE = provenance;
        SPLITTER = splitter;
        WITHDRAWAL_DELAY = withdrawalDelay;
    }

    // ------------------------------------------------------------------ terms and purchases

    /// @inheritdoc ILicenseManager
    function attachTerms(bytes32 asset, TermsInput calldata input) external returns (uint256 termsId) {
        address creator = PROVENANCE.creatorOf(asset);
        if (creator == address(0)) revert LicenseManager__UnknownAsset(asset);
        if (creator != msg.sender) revert LicenseManager__NotCreator(asset, msg.sender);
        if (!_isAllowed(input.currency)) revert LicenseManager__CurrencyNotAllowed(input.currency);
        if (
            input.derivativeRoyaltyBps > MAX_DERIVATIVE_ROYALTY_BPS
                || (!input.derivativesAllowed && input.derivativeRoyaltyBps != 0)
        ) revert LicenseManager__BadDerivativeShare(input.derivativeRoyaltyBps, MAX_DERIVATIVE_ROYALTY_BPS);

        termsId = ++_termsCount;
        Terms memory terms = Terms({
            asset: asset,
            currency: input.currency,
            pricePerUse: input.pricePerUse,
            price: input.price,
            duration: input.duration,
            derivativeRoyaltyBps: input.derivativeRoyaltyBps,
            commercialUse: input.commercialUse,
            derivativesAllowed: input.derivativesAllowed,
            active: true,
            epoch: uint24(_assetEpochs[asset])
        });
        _terms[termsId] = terms;
        emit TermsAttached(termsId, asset, input.currency, terms);
    }

    /// @inheritdoc ILicenseManager
    function setTermsActive(uint256 termsId, bool active) external {
        Terms storage terms = _requireTerms(termsId);
        if (PROVENANCE.creatorOf(terms.asset) != msg.sender) revert LicenseManager__NotCreator(terms.asset, msg.sender);
        terms.active = active;
        emit TermsActiveSet(termsId, active);
    }

    /// @inheritdoc ILicenseManager
    function purchase(uint256 termsId, address to) external payable nonReentrant returns (uint256 licenseId) {
        Terms storage terms = _requireTerms(termsId);
        if (!terms.active) revert LicenseManager__TermsInactive(termsId);
        if (terms.epoch != _assetEpochs[terms.asset]) revert LicenseManager__TermsSuperseded(termsId);
        if (to == address(0)) revert LicenseManager__ZeroRecipient();
        address currency = terms.currency;
        if (!_isAllowed(currency)) revert LicenseManager__CurrencyNotAllowed(currency);
        uint256 price = terms.price;
        uint64 expiresAt = terms.duration == 0 ? PERPETUAL : uint64(block.timestamp) + terms.duration;
        licenseId = (termsId << 64) | expiresAt;

        if (price != 0) {
            _collect(currency, price);
            SPLITTER.fundRevenue{value: currency == address(0) ? price : 0}(currency, terms.asset, price);
        } else if (msg.value != 0) {
            revert LicenseManager__WrongPayment(msg.value, 0);
        }
        emit LicensePurchased(termsId, msg.sender, to, licenseId, price, expiresAt);
        _mint(to, licenseId, 1, "");
    }

    /// @inheritdoc ILicenseGate
    function consumeDerivativeLicense(address holder, bytes32 parent, uint256 licenseId)
        external
        returns (uint16 shareBps)
    {
        if (msg.sender != address(PROVENANCE)) revert LicenseManager__OnlyProvenanceRegistry(msg.sender);
        (uint256 termsId, uint64 expiresAt) = decodeLicenseId(licenseId);
        Terms storage terms = _terms[termsId];
        if (termsId == 0 || termsId > _termsCount || terms.asset != parent) {
            revert LicenseManager__LicenseNotForAsset(licenseId, parent);
        }
        if (!terms.derivativesAllowed) revert LicenseManager__DerivativesNotAllowed(licenseId);
        if (terms.epoch != _assetEpochs[parent]) revert LicenseManager__TermsSuperseded(termsId);
        if (expiresAt <= block.timestamp) revert LicenseManager__LicenseExpired(licenseId, expiresAt);
        if (balanceOf(holder, licenseId) == 0) revert LicenseManager__NoLicense(holder, licenseId);
        _burn(holder, licenseId, 1);
        emit LicenseConsumed(licenseId, holder, parent);
        return terms.derivativeRoyaltyBps;
    }

    /// @inheritdoc ILicenseGate
    function onAssetSuperseded(bytes32 asset) external {
        if (msg.sender != address(PROVENANCE)) revert LicenseManager__OnlyProvenanceRegistry(msg.sender);
        // A takeover needs a batch committed before the record it replaces, so an asset has at
        // most as many epochs as batches: 2^24 of them are out of reach.
        uint256 epoch = _assetEpochs[asset] + 1;
        _assetEpochs[asset] = SafeCast.toUint24(epoch);
        emit AssetEpochAdvanced(asset, epoch);
    }

    // ------------------------------------------------------------------ escrow

    /// @inheritdoc ILicenseManager
    function deposit(address currency, address service, uint256 amount) external payable nonReentrant {
        if (amount == 0) revert LicenseManager__ZeroAmount();
        if (service == address(0)) revert LicenseManager__ZeroRecipient();
        if (!_isAllowed(currency)) revert LicenseManager__CurrencyNotAllowed(currency);
        _collect(currency, amount);
        uint256 balance = _escrow[currency][service][msg.sender] + amount;
        _escrow[currency][service][msg.sender] = balance;
        emit EscrowDeposited(msg.sender, currency, service, amount, balance);
        SPLITTER.fundReserve{value: currency == address(0) ? amount : 0}(currency, amount);
    }

    /// @inheritdoc ILicenseManager
    function requestWithdrawal(address currency, address service, uint256 amount) external {
        if (amount == 0) revert LicenseManager__ZeroAmount();
        uint64 unlockAt = SafeCast.toUint64(block.timestamp + WITHDRAWAL_DELAY);
        _withdrawals[currency][service][msg.sender] = Withdrawal({amount: amount, unlockAt: unlockAt});
        emit WithdrawalRequested(msg.sender, currency, service, amount, unlockAt);
    }

    /// @inheritdoc ILicenseManager
    function cancelWithdrawal(address currency, address service) external {
        delete _withdrawals[currency][service][msg.sender];
        emit WithdrawalCancelled(msg.sender, currency, service);
    }

    /// @inheritdoc ILicenseManager
    function withdrawEscrow(address currency, address service, address to) external nonReentrant {
        if (to == address(0)) revert LicenseManager__ZeroRecipient();
        Withdrawal memory request = _withdrawals[currency][service][msg.sender];
        uint64 unlockAt = request.unlockAt;
        if (unlockAt == 0 || block.timestamp < unlockAt) revert LicenseManager__WithdrawalLocked(unlockAt, block.timestamp);
        uint256 expiresAt = uint256(unlockAt) + WITHDRAWAL_WINDOW;
        if (block.timestamp > expiresAt) revert LicenseManager__WithdrawalExpired(expiresAt, block.timestamp);
        uint256 balance = _escrow[currency][service][msg.sender];
        uint256 amount = request.amount > balance ? balance : request.amount;
        if (amount == 0) revert LicenseManager__ZeroAmount();
        // Cannot underflow: amount <= balance was ensured above.
        unchecked {
            _escrow[currency][service][msg.sender] = balance - amount;
        }
        delete _withdrawals[currency][service][msg.sender];
        emit EscrowWithdrawn(msg.sender, currency, service, to, amount);
        SPLITTER.releaseReserve(currency, to, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @inheritdoc ILicenseManager
    /// @dev Gas, per voucher: its channel word (read and written; shared with the payer's
    ///      channels on neighbouring terms), one signature recovery and one event; per run of
    ///      one payer, its escrow word (read once, written once); per run of one terms id, the
    ///      terms (read once); per run of one asset, one credit in the splitter.
    function settle(
        address currency,
        address service,
        Voucher[] calldata vouchers,
        WalletSignature[] calldata walletSignatures
    ) external nonReentrant {
        uint256 count = vouchers.length;
        if (msg.sender != service) revert LicenseManager__NotService(msg.sender, service);
        if (count == 0 || count > MAX_VOUCHERS) revert LicenseManager__BadBatchSize(count, MAX_VOUCHERS);
        Batch memory batch;
        batch.currency = currency;
        batch.service = service;

        batch.domain = _domainSeparatorV4();
        batch.assets = new bytes32[](count);
        batch.amounts = new uint256[](count);
        mapping(address payer => uint256) storage escrows = _escrow[currency][service];
        mapping(address payer => mapping(uint256 termsGroup => uint256)) storage channels = _channels[service];
        _checkWalletSignatures(walletSignatures, count);
        for (uint256 i = 0; i < count; ++i) {
            _settleOne(i, vouchers[i], walletSignatures, batch, escrows, channels);
        }
        if (batch.payer != address(0)) {
            // Cannot underflow: every debit was checked against what was available.
            escrows[batch.payer] = batch.available - batch.debit;
        }
        emit BatchSettled(service, currency, batch.settled, count - batch.settled, batch.total);
        if (batch.runs == 0) return;

        bytes32[] memory assets = new bytes32[](batch.runs);
        uint256[] memory amounts = new uint256[](batch.runs);
        for (uint256 r = 0; r < batch.runs; ++r) {
            assets[r] = batch.assets[r];
            amounts[r] = batch.amounts[r];
        }
        SPLITTER.creditFromReserve(currency, assets, amounts, batch.total);
    }

    // ------------------------------------------------------------------ push payments

    /// @inheritdoc ILicenseManager
    function sweepPayments(bytes32 asset, address token) external nonReentrant returns (uint256 amount) {
        if (PROVENANCE.creatorOf(asset) == address(0)) revert LicenseManager__UnknownAsset(asset);
        if (token == address(0) || !_allowed[token]) revert LicenseManager__CurrencyNotAllowed(token);
        address receiver = paymentReceiverOf(asset);
        if (receiver.code.length == 0) {
            address deployed = address(new PaymentReceiver{salt: asset}());
            // CREATE2 as the EVM computes it; a chain that computes it otherwise would strand payments
            if (deployed != receiver) revert LicenseManager__ReceiverMismatch(receiver, deployed);
        }
        IERC20 paid = IERC20(token);
        uint256 before = paid.balanceOf(address(SPLITTER));
        uint256 sent = PaymentReceiver(receiver).sweep(paid, address(SPLITTER));
        uint256 received = paid.balanceOf(address(SPLITTER)) - before;
        // what arrived, but never more than the receiver sent: a token that moves other money into
        // the splitter during its own transfer cannot have it credited here as well
        amount = received < sent ? received : sent;
        if (amount == 0) revert LicenseManager__NothingToSweep(asset, token);
        emit PaymentsSwept(asset, token, receiver, amount);
        SPLITTER.fundRevenue(token, asset, amount);
    }

    /// @inheritdoc ILicenseManager
    function paymentReceiverOf(bytes32 asset) public view returns (address receiver) {
        bytes32 code = keccak256(type(PaymentReceiver).creationCode);
        receiver = address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), asset, code)))));
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc ILicenseManager
    function setCurrencyAllowed(address currency, bool allowed) external onlyOwner {
        if (currency == address(0)) revert LicenseManager__CurrencyNotAllowed(currency);
        _allowed[currency] = allowed;
        emit CurrencyAllowed(currency, allowed);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ILicenseManager
    function getTerms(uint256 termsId) external view returns (Terms memory) {
        return _requireTerms(termsId);
    }

    /// @inheritdoc ILicenseManager
    function assetEpoch(bytes32 asset) external view returns (uint256) {
        return _assetEpochs[asset];
    }

    /// @inheritdoc ILicenseManager
    function termsCount() external view returns (uint256) {
        return _termsCount;
    }

    /// @inheritdoc ILicenseManager
    function escrowOf(address payer, address currency, address service)
        external
        view
        returns (uint256 balance, uint256 pendingWithdrawal, uint64 unlockAt)
    {
        Withdrawal storage request = _withdrawals[currency][service][payer];
        return (_escrow[currency][service][payer], request.amount, request.unlockAt);
    }

    /// @inheritdoc ILicenseManager
    function settledOf(address payer, address service, uint256 termsId) external view returns (uint256) {
        uint256 word = _channels[service][payer][termsId / CHANNELS_PER_WORD];
        return (word >> ((termsId % CHANNELS_PER_WORD) * _CHANNEL_BITS)) & MAX_CUMULATIVE;
    }

    /// @inheritdoc ILicenseManager
    function isCurrencyAllowed(address currency) external view returns (bool) {
        return _isAllowed(currency);
    }

    /// @inheritdoc ILicenseManager
    function voucherDigest(
        address payer,
        address service,
        bytes32 asset,
        uint256 termsId,
        uint256 cumulativeAmount,
        uint256 deadline
    ) external view returns (bytes32) {
        return _hashTypedDataV4(_voucherHash(payer, service, asset, termsId, cumulativeAmount, deadline));
    }

    /// @inheritdoc ILicenseManager
    function decodeLicenseId(uint256 licenseId) public pure returns (uint256 termsId, uint64 expiresAt) {
        return (licenseId >> 64, uint64(licenseId));
    }

    /// @notice ERC-1155 metadata: the licensed asset's metadata URI.
    /// @param licenseId The licence token id.
    /// @return The URI, or "" for ids of unknown terms.
    function uri(uint256 licenseId) public view override returns (string memory) {
        (uint256 termsId,) = decodeLicenseId(licenseId);
        if (termsId == 0 || termsId > _termsCount) return "";
        return IProvenanceWiring(address(PROVENANCE)).tokenURI(uint256(_terms[termsId].asset));
    }

    // ------------------------------------------------------------------ internals

    /// @dev State of one `settle` call: its currency and service; the runs of one asset (each
    ///      credited once); the escrow of the current run of one payer (written back when the
    ///      payer changes); the terms of the current run of one terms id; where to look for the
    ///      next wallet signature; what settled; the EIP-712 domain separator (computed once);
    ///      the current voucher's channel word.
    struct Batch {
        address currency;
        address service;
        bytes32[] assets;
        uint256[] amounts;
        uint256 runs;
        uint256 total;
        uint256 settled;
        address payer;
        uint256 available;
        uint256 debit;
        uint256 termsId;
        bytes32 asset;
        uint256 nextWalletSignature;
        bytes32 domain;
        uint256 group;
        uint256 shift;
        uint256 word;
    }

    /// @dev Settles voucher `index`, or skips it (see `settle`), or reverts the batch.
    function _settleOne(
        uint256 index,
        Voucher calldata v,
        WalletSignature[] calldata walletSignatures,
        Batch memory batch,
        mapping(address payer => uint256) storage escrows,
        mapping(address payer => mapping(uint256 termsGroup => uint256)) storage channels
    ) private {
        bytes32 asset = _termsAsset(index, v, batch);
        uint256 cumulative = v.cumulativeAmount;
        if (cumulative > MAX_CUMULATIVE) revert LicenseManager__AmountTooLarge(index, cumulative, MAX_CUMULATIVE);
        mapping(uint256 termsGroup => uint256) storage groups = channels[v.payer];
        uint256 settled = _readChannel(groups, v.termsId, batch);
        if (cumulative <= settled) {
            _skip(v, cumulative == settled ? SkipReason.AlreadySettled : SkipReason.BelowSettled);
            return;
        }
        // Cannot underflow: cumulative > settled was checked above.
        uint256 paid;
        unchecked {
            paid = cumulative - settled;
        }
        if (paid > _escrowLeft(batch, escrows, v.payer)) {
            _skip(v, SkipReason.InsufficientEscrow);
            return;
        }
        if (!_signatureValid(index, v, asset, batch, walletSignatures)) {
            _skip(v, SkipReason.WalletRejected);
            return;
        }
        groups[batch.group] = (batch.word & ~(MAX_CUMULATIVE << batch.shift)) | (cumulative << batch.shift);
        _credit(batch, asset, paid);
        emit VoucherSettled(v.payer, v.termsId, cumulative);
    }

    function _skip(Voucher calldata v, SkipReason reason) private {
        emit VoucherSkipped(v.payer, v.termsId, v.cumulativeAmount, reason);
    }

    /// @dev What channel `termsId` of a payer has settled, keeping its word, group and bit
    ///      position in `batch` for the write.
    function _readChannel(mapping(uint256 termsGroup => uint256) storage groups, uint256 termsId, Batch memory batch)
        private
        view
        returns (uint256 settled)
    {
        // Cannot overflow or divide by zero: constant divisors; the shift is below 256.
        unchecked {
            batch.group = termsId / CHANNELS_PER_WORD;
            batch.shift = (termsId % CHANNELS_PER_WORD) * _CHANNEL_BITS;
        }
        batch.word = groups[batch.group];
        return (batch.word >> batch.shift) & MAX_CUMULATIVE;
    }

    /// @dev Wallet signatures must name vouchers of the batch, in strictly ascending order.
    function _checkWalletSignatures(WalletSignature[] calldata walletSignatures, uint256 count) private pure {
        if (walletSignatures.length > MAX_WALLET_SIGNATURES) {
            revert LicenseManager__TooManyWalletSignatures(walletSignatures.length, MAX_WALLET_SIGNATURES);
        }
        uint256 previous;
        for (uint256 k = 0; k < walletSignatures.length; ++k) {
            uint256 index = walletSignatures[k].index;
            if (index >= count || (k != 0 && index <= previous)) revert LicenseManager__BadWalletSignature(k);
            previous = index;
        }
    }

    /// @dev The wallet signature of voucher `index` (empty when it has none). Vouchers are
    ///      looked up in order, so the cursor only moves forward past entries of skipped ones.
    function _walletSignatureOf(uint256 index, WalletSignature[] calldata walletSignatures, Batch memory batch)
        private
        pure
        returns (bytes calldata)
    {
        uint256 next = batch.nextWalletSignature;
        while (next < walletSignatures.length && walletSignatures[next].index < index) ++next;
        batch.nextWalletSignature = next;
        if (next < walletSignatures.length && walletSignatures[next].index == index) {
            return walletSignatures[next].signature;
        }
        return msg.data[0:0];
    }

    /// @dev The asset of voucher `index`'s terms, once the voucher is unexpired and its terms
    ///      known, metered and in the batch's currency (terms read once per run of one id).
    function _termsAsset(uint256 index, Voucher calldata v, Batch memory batch) private view returns (bytes32 asset) {
        if (v.deadline < block.timestamp) revert LicenseManager__VoucherExpired(index, v.deadline, block.timestamp);
        uint256 termsId = v.termsId;
        // A cached asset is never 0: the cache answers only after a lookup that found terms.
        if (termsId == batch.termsId && batch.asset != bytes32(0)) return batch.asset;
        Terms storage terms = _terms[termsId];
        asset = terms.asset;
        // Unknown terms read as asset 0, and no asset has id 0.
        if (asset == bytes32(0)) revert LicenseManager__UnknownVoucherTerms(index, termsId);
        if (terms.currency != batch.currency) {
            revert LicenseManager__CurrencyMismatch(index, terms.currency, batch.currency);
        }
        if (terms.pricePerUse == 0) revert LicenseManager__NotMetered(index, termsId);
        batch.termsId = termsId;
        batch.asset = asset;
    }

    /// @dev What is left of `payer`'s escrow in this batch (making it the batch's current one,
    ///      and writing the previous one back, when the payer changes).
    function _escrowLeft(Batch memory batch, mapping(address payer => uint256) storage escrows, address payer)
        private
        returns (uint256)
    {
        if (payer != batch.payer) {
            if (batch.payer != address(0)) {
                // Cannot underflow: every debit was checked against what was available.
                escrows[batch.payer] = batch.available - batch.debit;
            }
            batch.payer = payer;
            batch.available = escrows[payer];
            batch.debit = 0;
        }
        return batch.available - batch.debit;
    }

    /// @dev Debits `paid` from the current escrow and adds it to the batch's run of `asset` (a
    ///      new run when the asset changes).
    function _credit(Batch memory batch, bytes32 asset, uint256 paid) private pure {
        // Cannot overflow: every amount is part of an escrow balance checked to cover it, and
        // the escrows together are the reserve the splitter holds; runs and settled count
        // vouchers (at most MAX_VOUCHERS).
        unchecked {
            batch.debit += paid;
            batch.total += paid;
            ++batch.settled;
            uint256 runs = batch.runs;
            if (runs == 0 || batch.assets[runs - 1] != asset) {
                batch.assets[runs] = asset;
                batch.runs = ++runs;
            }
            batch.amounts[runs - 1] += paid;
        }
    }

    /// @dev Whether the voucher is signed by its payer. A voucher without a wallet signature
    ///      carries an EOA's compact (r, vs) signature, and a bad one reverts naming the voucher
    ///      (the submitter's error: an EOA cannot take its signature back). A voucher with a
    ///      wallet signature is checked as OpenZeppelin's SignatureChecker does, ECDSA over the
    ///      bytes, then, when that fails and the payer holds code, ERC-1271; any failure returns
    ///      false and the voucher is skipped: a wallet can change its mind (or an EIP-7702
    ///      account its code), which must not fail the batch.
    function _signatureValid(
        uint256 index,
        Voucher calldata v,
        bytes32 asset,
        Batch memory batch,
        WalletSignature[] calldata walletSignatures
    ) private view returns (bool) {
        address payer = v.payer;
        bytes32 digest = MessageHashUtils.toTypedDataHash(
            batch.domain, _voucherHash(payer, batch.service, asset, v.termsId, v.cumulativeAmount, v.deadline)
        );
        bytes calldata walletSignature =
            walletSignatures.length == 0 ? msg.data[0:0] : _walletSignatureOf(index, walletSignatures, batch);
        address signer;
        ECDSA.RecoverError err = ECDSA.RecoverError.InvalidSignatureLength;
        if (walletSignature.length == 0) {
            (signer, err,) = ECDSA.tryRecover(digest, v.r, v.vs);
        } else if (walletSignature.length == 65) {
            (signer, err,) = ECDSA.tryRecover(
                digest, uint8(walletSignature[64]), bytes32(walletSignature[0:32]), bytes32(walletSignature[32:64])
            );
        }
        if (err == ECDSA.RecoverError.NoError && signer == payer) return true;
        if (walletSignature.length != 0) {
            return payer.code.length != 0 && _walletAccepts(payer, digest, walletSignature);
        }
        if (err == ECDSA.RecoverError.InvalidSignatureS) revert LicenseManager__MalleableSignature(index);
        if (err != ECDSA.RecoverError.NoError) revert LicenseManager__BadSignature(index);
        revert LicenseManager__WrongSigner(index, signer, payer);
    }

    /// @dev ERC-1271 `isValidSignature` of a wallet payer, through STATICCALL (a wallet cannot
    ///      write state while validating) with at most `WALLET_CHECK_GAS`. Hand-written because
    ///      a Solidity call copies the whole answer into memory, which the caller pays for: a
    ///      wallet answering with hundreds of kilobytes (cheap within its gas) would make each
    ///      such voucher dearer than the last, and a batch run out of gas. Only the first 32
    ///      bytes of the answer are read, into the scratch word at 0x00.
    function _walletAccepts(address payer, bytes32 digest, bytes calldata signature) private view returns (bool) {
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        uint256 gasLimit = WALLET_CHECK_GAS;
        bool ok;
        bytes32 answer;
        uint256 size;
        assembly ("memory-safe") {
            ok := staticcall(gasLimit, payer, add(data, 0x20), mload(data), 0x00, 0x20)
            size := returndatasize()
            answer := mload(0x00)
        }
        return ok && size >= 32 && bytes4(answer) == IERC1271.isValidSignature.selector;
    }

    /// @dev EIP-712 `hashStruct` of a voucher.
    function _voucherHash(
        address payer,
        address service,
        bytes32 asset,
        uint256 termsId,
        uint256 cumulativeAmount,
        uint256 deadline
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(VOUCHER_TYPEHASH, payer, service, asset, termsId, cumulativeAmount, deadline));
    }

    /// @dev Takes `amount` from the caller: ETH must come with the call; an ERC-20 goes from the
    ///      caller straight to the splitter and must arrive in full.
    function _collect(address currency, uint256 amount) private {
        if (currency == address(0)) {
            if (msg.value != amount) revert LicenseManager__WrongPayment(msg.value, amount);
            return;
        }
        if (msg.value != 0) revert LicenseManager__WrongPayment(msg.value, 0);
        IERC20 token = IERC20(currency);
        uint256 before = token.balanceOf(address(SPLITTER));
        token.safeTransferFrom(msg.sender, address(SPLITTER), amount);
        uint256 received = token.balanceOf(address(SPLITTER)) - before;
        if (received != amount) revert LicenseManager__TransferMismatch(currency, amount, received);
    }

    function _isAllowed(address currency) private view returns (bool) {
        return currency == address(0) || _allowed[currency];
    }

    function _requireTerms(uint256 termsId) private view returns (Terms storage) {
        if (termsId == 0 || termsId > _termsCount) revert LicenseManager__UnknownTerms(termsId);
        return _terms[termsId];
    }
}
