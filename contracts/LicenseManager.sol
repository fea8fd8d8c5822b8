// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ILicenseGate} from "./interfaces/ILicenseGate.sol";
import {ILicenseManager} from "./interfaces/ILicenseManager.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {IRoyaltySplitter} from "./interfaces/IRoyaltySplitter.sol";

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
///      - A voucher is only as good as the payer's escrow: a service must settle (or stop
///        serving) before a payer's withdrawal delay runs out.
///      - ERC-20s are allow-listed by the owner; fee-on-transfer tokens are refused by a balance
///        check, tokens without a return value work through SafeERC20.
contract LicenseManager is ILicenseManager, ERC1155, EIP712, Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Most vouchers one `settle` call takes.
    /// @dev Sized by the dearest batch: every voucher from a different payer, for a different asset
    ///      with no pending revenue, opening a new channel (about 70k gas each: a fresh settled
    ///      slot, a fresh revenue slot, cold terms and escrow, ecrecover). 192 of those cost about
    ///      13.4M gas, under half of a 30M block; 256 would cost 17.8M.
    uint256 public constant MAX_VOUCHERS = 192;
    /// @notice Highest derivative royalty share terms may ask (50%).
    uint16 public constant MAX_DERIVATIVE_ROYALTY_BPS = 5_000;
    /// @notice Shortest withdrawal delay the constructor accepts.
    uint64 public constant MIN_WITHDRAWAL_DELAY = 1 hours;
    /// @notice Longest withdrawal delay the constructor accepts.
    uint64 public constant MAX_WITHDRAWAL_DELAY = 30 days;
    /// @notice Expiry encoded in the id of a perpetual licence.
    uint64 public constant PERPETUAL = type(uint64).max;
    /// @notice EIP-712 type hash of a voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address payer,bytes32 asset,uint256 termsId,uint256 cumulativeAmount,uint256 deadline)"
    );

    /// @notice The provenance registry whose assets are licensed.
    IProvenanceRegistry public immutable PROVENANCE;
    /// @notice The vault that holds escrow and revenue.
    IRoyaltySplitter public immutable SPLITTER;
    /// @notice Seconds between a withdrawal request and the withdrawal.
    uint64 public immutable WITHDRAWAL_DELAY;

    struct Escrow {
        uint192 balance;
        uint64 unlockAt;
    }

    uint256 private _termsCount;
    mapping(uint256 termsId => Terms) private _terms;
    mapping(address payer => mapping(address currency => Escrow)) private _escrow;
    mapping(address payer => mapping(address currency => uint256)) private _pendingWithdrawal;
    mapping(address payer => mapping(uint256 termsId => uint256)) private _settled;
    mapping(address currency => bool) private _allowed;

    /// @param provenance The provenance registry; must name this contract as its licence manager.
    /// @param splitter The royalty splitter (deployed next; its constructor checks the wiring).
    /// @param withdrawalDelay Seconds a payer waits between requesting and withdrawing escrow.
    /// @param initialOwner Manages the ERC-20 allow-list.
    constructor(IProvenanceRegistry provenance, IRoyaltySplitter splitter, uint64 withdrawalDelay, address initialOwner)
        ERC1155("")
        EIP712("Proofmint LicenseManager", "1")
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
            active: true
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
        if (expiresAt <= block.timestamp) revert LicenseManager__LicenseExpired(licenseId, expiresAt);
        if (balanceOf(holder, licenseId) == 0) revert LicenseManager__NoLicense(holder, licenseId);
        _burn(holder, licenseId, 1);
        emit LicenseConsumed(licenseId, holder, parent);
        return terms.derivativeRoyaltyBps;
    }

    // ------------------------------------------------------------------ escrow

    /// @inheritdoc ILicenseManager
    function deposit(address currency, uint256 amount) external payable nonReentrant {
        if (amount == 0) revert LicenseManager__ZeroAmount();
        if (!_isAllowed(currency)) revert LicenseManager__CurrencyNotAllowed(currency);
        _collect(currency, amount);
        Escrow storage escrow = _escrow[msg.sender][currency];
        uint256 balance = uint256(escrow.balance) + amount;
        escrow.balance = uint192(balance); // total supply of any sane currency is below 2^192
        emit EscrowDeposited(msg.sender, currency, amount, balance);
        SPLITTER.fundReserve{value: currency == address(0) ? amount : 0}(currency, amount);
    }

    /// @inheritdoc ILicenseManager
    function requestWithdrawal(address currency, uint256 amount) external {
        if (amount == 0) revert LicenseManager__ZeroAmount();
        uint64 unlockAt = uint64(block.timestamp) + WITHDRAWAL_DELAY;
        _pendingWithdrawal[msg.sender][currency] = amount;
        _escrow[msg.sender][currency].unlockAt = unlockAt;
        emit WithdrawalRequested(msg.sender, currency, amount, unlockAt);
    }

    /// @inheritdoc ILicenseManager
    function cancelWithdrawal(address currency) external {
        delete _pendingWithdrawal[msg.sender][currency];
        _escrow[msg.sender][currency].unlockAt = 0;
        emit WithdrawalCancelled(msg.sender, currency);
    }

    /// @inheritdoc ILicenseManager
    function withdrawEscrow(address currency, address to) external nonReentrant {
        if (to == address(0)) revert LicenseManager__ZeroRecipient();
        Escrow storage escrow = _escrow[msg.sender][currency];
        uint64 unlockAt = escrow.unlockAt;
        if (unlockAt == 0 || block.timestamp < unlockAt) revert LicenseManager__WithdrawalLocked(unlockAt, block.timestamp);
        uint256 amount = _pendingWithdrawal[msg.sender][currency];
        if (amount > escrow.balance) amount = escrow.balance;
        if (amount == 0) revert LicenseManager__ZeroAmount();
        escrow.balance -= uint192(amount);
        escrow.unlockAt = 0;
        delete _pendingWithdrawal[msg.sender][currency];
        emit EscrowWithdrawn(msg.sender, currency, to, amount);
        SPLITTER.releaseReserve(currency, to, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @inheritdoc ILicenseManager
    function settle(address currency, Voucher[] calldata vouchers) external nonReentrant {
        uint256 count = vouchers.length;
        if (count == 0 || count > MAX_VOUCHERS) revert LicenseManager__BadBatchSize(count, MAX_VOUCHERS);

        // One run per stretch of consecutive vouchers for the same asset (credited once), and one
        // escrow read and write per stretch of the same payer.
        Runs memory runs = Runs({
            assets: new bytes32[](count),
            amounts: new uint256[](count),
            count: 0,
            total: 0,
            payer: address(0),
            available: 0,
            debit: 0
        });
        for (uint256 i = 0; i < count; ++i) {
            Voucher calldata v = vouchers[i];
            (uint256 paid, bytes32 asset) = _checkVoucher(i, v, currency);
            _addToRuns(runs, i, v.payer, asset, paid, currency);
            emit VoucherSettled(v.payer, v.termsId, v.cumulativeAmount);
        }
        _escrow[runs.payer][currency].balance = uint192(runs.available - runs.debit);

        bytes32[] memory assets = new bytes32[](runs.count);
        uint256[] memory amounts = new uint256[](runs.count);
        for (uint256 r = 0; r < runs.count; ++r) {
            assets[r] = runs.assets[r];
            amounts[r] = runs.amounts[r];
        }
        SPLITTER.creditFromReserve(currency, assets, amounts, runs.total);
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
    function termsCount() external view returns (uint256) {
        return _termsCount;
    }

    /// @inheritdoc ILicenseManager
    function escrowOf(address payer, address currency)
        external
        view
        returns (uint256 balance, uint256 pendingWithdrawal, uint64 unlockAt)
    {
        Escrow storage escrow = _escrow[payer][currency];
        return (escrow.balance, _pendingWithdrawal[payer][currency], escrow.unlockAt);
    }

    /// @inheritdoc ILicenseManager
    function settledOf(address payer, uint256 termsId) external view returns (uint256) {
        return _settled[payer][termsId];
    }

    /// @inheritdoc ILicenseManager
    function isCurrencyAllowed(address currency) external view returns (bool) {
        return _isAllowed(currency);
    }

    /// @inheritdoc ILicenseManager
    function voucherDigest(address payer, bytes32 asset, uint256 termsId, uint256 cumulativeAmount, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, payer, asset, termsId, cumulativeAmount, deadline)));
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

    /// @dev Aggregation state of one `settle` call.
    struct Runs {
        bytes32[] assets;
        uint256[] amounts;
        uint256 count;
        uint256 total;
        address payer;
        uint256 available;
        uint256 debit;
    }

    function _addToRuns(Runs memory runs, uint256 index, address payer, bytes32 asset, uint256 paid, address currency)
        private
    {
        if (payer != runs.payer) {
            if (runs.payer != address(0)) {
                _escrow[runs.payer][currency].balance = uint192(runs.available - runs.debit);
            }
            runs.payer = payer;
            runs.available = _escrow[payer][currency].balance;
            runs.debit = 0;
        }
        runs.debit += paid;
        if (runs.debit > runs.available) {
            revert LicenseManager__InsufficientEscrow(index, payer, runs.debit, runs.available);
        }
        if (runs.count == 0 || runs.assets[runs.count - 1] != asset) {
            runs.assets[runs.count] = asset;
            ++runs.count;
        }
        runs.amounts[runs.count - 1] += paid;
        runs.total += paid;
    }

    /// @dev Checks one voucher and advances its channel; returns what it pays.
    function _checkVoucher(uint256 index, Voucher calldata v, address currency)
        private
        returns (uint256 paid, bytes32 asset)
    {
        if (v.deadline < block.timestamp) revert LicenseManager__VoucherExpired(index, v.deadline, block.timestamp);
        Terms storage terms = _terms[v.termsId];
        asset = terms.asset;
        // Unknown terms read as asset 0, and no asset has id 0.
        if (asset == bytes32(0)) revert LicenseManager__UnknownVoucherTerms(index, v.termsId);
        if (terms.currency != currency) revert LicenseManager__CurrencyMismatch(index, terms.currency, currency);
        if (terms.pricePerUse == 0) revert LicenseManager__NotMetered(index, v.termsId);
        uint256 settled = _settled[v.payer][v.termsId];
        if (v.cumulativeAmount == settled) revert LicenseManager__VoucherAlreadySettled(index, settled);
        if (v.cumulativeAmount < settled) {
            revert LicenseManager__CumulativeBelowSettled(index, v.cumulativeAmount, settled);
        }
        _checkSignature(index, v, asset);
        _settled[v.payer][v.termsId] = v.cumulativeAmount;
        // Cannot underflow: cumulativeAmount > settled was checked above.
        unchecked {
            paid = v.cumulativeAmount - settled;
        }
    }

    /// @dev ECDSA first, as OpenZeppelin's SignatureChecker does: an EOA payer costs no code-size
    ///      lookup. Only when that fails and the payer holds code is ERC-1271 asked (through
    ///      STATICCALL, so a wallet cannot write state while validating).
    function _checkSignature(uint256 index, Voucher calldata v, bytes32 asset) private view {
        bytes32 digest = voucherDigest(v.payer, asset, v.termsId, v.cumulativeAmount, v.deadline);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v.signature);
        if (err == ECDSA.RecoverError.NoError && signer == v.payer) return;
        if (v.payer.code.length != 0) {
            if (!SignatureChecker.isValidERC1271SignatureNow(v.payer, digest, v.signature)) {
                revert LicenseManager__ContractSignatureRejected(index, v.payer);
            }
            return;
        }
        if (err == ECDSA.RecoverError.InvalidSignatureS) revert LicenseManager__MalleableSignature(index);
        if (err != ECDSA.RecoverError.NoError) revert LicenseManager__BadSignature(index);
        revert LicenseManager__WrongSigner(index, signer, v.payer);
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
