// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {ILicenseManager} from "./interfaces/ILicenseManager.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {IProvenanceRegistry} from "./interfaces/IProvenanceRegistry.sol";
import {IRoyaltySplitter} from "./interfaces/IRoyaltySplitter.sol";

/// @notice What the splitter reads of the wiring of its neighbours.
interface ISplitterWiring {
    function SPLITTER() external view returns (address);
    function PROTOCOL_FEE_BPS() external view returns (uint16);
    function MODEL_REGISTRY() external view returns (address);
}

/// @title RoyaltySplitter
/// @notice Escrow reserve, asset revenue, cumulative splits and pull payments (see {IRoyaltySplitter}).
/// @dev Note:
///      - No function pays anyone but the caller (or a receiver the caller names): a recipient that
///        reverts, burns gas or re-enters can only hurt its own withdrawal.
///      - Distribution touches at most 4 + `MAX_PARENTS` balances; royalty stacks deeper than one
///        level are paid by distributing each ancestor in turn, never by recursion.
///      - The creator share goes to the creator recorded at registration; the developer share to
///        the model's developer at distribution time.
///      - Dust (at most one wei per role and asset, overall) stays in the contract, accounted.
///      - The protocol fee is charged once per payment: what a derivative passes to a parent is
///        the parent's inherited revenue, split among the parent's roles without the fee (its
///        creator takes the fee's part).
contract RoyaltySplitter is IRoyaltySplitter, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Weights of training-data originators are parts of this scale (parts per million).
    uint256 public constant WEIGHT_SCALE = 1_000_000;
    uint256 private constant _BPS = 10_000;

    /// @notice The provenance registry (asset creators, models, parents).
    IProvenanceRegistry public immutable PROVENANCE;
    /// @notice The model registry (developers, shares, data roots).
    IModelRegistry public immutable MODELS;
    /// @notice The licence manager, the only contract that may move escrow.
    ILicenseManager public immutable LICENSE_MANAGER;
    /// @notice Receives the protocol fee.
    address public immutable TREASURY;
    /// @notice Protocol fee in basis points (read from the provenance registry).
    uint16 public immutable PROTOCOL_FEE_BPS;

    mapping(address currency => uint256) private _reserve;
    mapping(address currency => uint256) private _dust;
    mapping(address currency => uint256) private _deposited;
    mapping(address currency => uint256) private _withdrawn;
    mapping(bytes32 asset => mapping(address currency => uint256)) private _pending;
    mapping(bytes32 asset => mapping(address currency => uint256)) private _pendingInherited;
    /// @dev What an asset's current record has distributed: the cumulative floor shares are
    ///      exact for one split, and a batch claim that takes a record over (a new `seq`) may
    ///      change the split, so the totals start again for each record.
    struct Progress {
        uint256 total;
        uint208 inherited;
        uint48 seqPlusOne;
    }

    mapping(bytes32 asset => mapping(address currency => Progress)) private _progress;
    mapping(address account => mapping(address currency => uint256)) private _balances;
    mapping(uint256 modelId => mapping(address currency => uint256)) private _dataPool;
    mapping(uint256 modelId => mapping(address currency => uint256)) private _dataPaid;
    /// @dev Claimed per data-tree leaf, so an originator listed with two weights is paid both.
    mapping(uint256 modelId => mapping(address currency => mapping(bytes32 leaf => uint256))) private _dataClaimed;

    /// @dev Shares of one asset, resolved for a distribution.
    struct Split {
        uint256 seq;
        address creator;
        address developer;
        uint256 modelId;
        uint256 developerBps;
        uint256 dataBps;
        uint256 creatorBps;
        bytes32[] parents;
        uint16[] parentBps;
    }

    /// @param provenance The provenance registry.
    /// @param models The model registry.
    /// @param licenseManager The licence manager; must name this contract as its splitter.
    /// @param treasury Receives the protocol fee.
    constructor(IProvenanceRegistry provenance, IModelRegistry models, ILicenseManager licenseManager, address treasury) {
        if (
            address(provenance) == address(0) || address(models) == address(0) || treasury == address(0)
                || ISplitterWiring(address(licenseManager)).SPLITTER() != address(this)
                || ISplitterWiring(address(provenance)).MODEL_REGISTRY() != address(models)
        ) revert RoyaltySplitter__BadConfig();
        PROVENANCE = provenance;
        MODELS = models;
        LICENSE_MANAGER = licenseManager;
        TREASURY = treasury;
        PROTOCOL_FEE_BPS = ISplitterWiring(address(provenance)).PROTOCOL_FEE_BPS();
    }

    modifier onlyLicenseManager() {
        if (msg.sender != address(LICENSE_MANAGER)) revert RoyaltySplitter__OnlyLicenseManager(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ inflows

    /// @inheritdoc IRoyaltySplitter
    function fundReserve(address currency, uint256 amount) external payable onlyLicenseManager {
        _checkFunded(currency, amount);
        _deposited[currency] += amount;
        _reserve[currency] += amount;
        emit ReserveFunded(currency, amount);
    }

    /// @inheritdoc IRoyaltySplitter
    function fundRevenue(address currency, bytes32 asset, uint256 amount) external payable onlyLicenseManager {
        _checkFunded(currency, amount);
        _deposited[currency] += amount;
        _pending[asset][currency] += amount;
        emit RevenueAdded(asset, currency, amount);
    }

    /// @inheritdoc IRoyaltySplitter
    function creditFromReserve(address currency, bytes32[] calldata assets, uint256[] calldata amounts, uint256 total)
        external
        onlyLicenseManager
    {
        if (assets.length != amounts.length) revert RoyaltySplitter__BadCredit();
        uint256 reserve = _reserve[currency];
        if (total > reserve) revert RoyaltySplitter__ReserveExceeded(currency, total, reserve);
        uint256 sum;
        for (uint256 i = 0; i < assets.length; ++i) {
            _pending[assets[i]][currency] += amounts[i];
            sum += amounts[i];
            emit RevenueAdded(assets[i], currency, amounts[i]);
        }
        if (sum != total) revert RoyaltySplitter__BadCredit();
        // Cannot underflow: total <= reserve was checked above.
        unchecked {
            _reserve[currency] = reserve - total;
        }
    }

    /// @inheritdoc IRoyaltySplitter
    function releaseReserve(address currency, address to, uint256 amount) external onlyLicenseManager nonReentrant {
        uint256 reserve = _reserve[currency];
        if (amount > reserve) revert RoyaltySplitter__ReserveExceeded(currency, amount, reserve);
        // Cannot underflow: amount <= reserve was checked above.
        unchecked {
            _reserve[currency] = reserve - amount;
        }
        _withdrawn[currency] += amount;
        emit ReserveReleased(currency, to, amount);
        _send(currency, to, amount);
    }

    /// @inheritdoc IRoyaltySplitter
    function pay(bytes32 asset, address currency, uint256 amount) external payable nonReentrant {
        if (amount == 0) revert RoyaltySplitter__ZeroAmount();
        if (!PROVENANCE.exists(asset)) revert RoyaltySplitter__UnknownAsset(asset);
        if (currency == address(0)) {
            if (msg.value != amount) revert RoyaltySplitter__WrongPayment(msg.value, amount);
        } else {
            if (msg.value != 0) revert RoyaltySplitter__WrongPayment(msg.value, 0);
            if (!LICENSE_MANAGER.isCurrencyAllowed(currency)) revert RoyaltySplitter__CurrencyNotAllowed(currency);
            IERC20 token = IERC20(currency);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), amount);
            uint256 received = token.balanceOf(address(this)) - before;
            if (received != amount) revert RoyaltySplitter__TransferMismatch(currency, amount, received);
        }
        _deposited[currency] += amount;
        _pending[asset][currency] += amount;
        emit RevenueAdded(asset, currency, amount);
    }

    // ------------------------------------------------------------------ splitting

    /// @inheritdoc IRoyaltySplitter
    function distribute(bytes32 asset, address currency) external {
        Split memory split = _splitOf(asset);
        Totals memory t = _advanceTotals(asset, currency, split.seq);

        // The fee grows with the revenue paid to this asset itself (total minus inherited); on
        // inherited revenue the creator takes the fee's part instead.
        uint256 fee = _increment(t.before - t.inheritedBefore, t.afterTotal - t.inheritedAfter, PROTOCOL_FEE_BPS);
        uint256 developerShare = _increment(t.before, t.afterTotal, split.developerBps);
        uint256 dataShare = _increment(t.before, t.afterTotal, split.dataBps);
        uint256 creatorShare = _increment(t.before, t.afterTotal, split.creatorBps)
            + _increment(t.inheritedBefore, t.inheritedAfter, PROTOCOL_FEE_BPS);
        if (fee != 0) _balances[TREASURY][currency] += fee;
        if (developerShare != 0) _balances[split.developer][currency] += developerShare;
        if (dataShare != 0) _dataPool[split.modelId][currency] += dataShare;
        if (creatorShare != 0) _balances[split.creator][currency] += creatorShare;
        uint256 parentsShare = _creditParents(asset, currency, split, t);
        // Dust of the asset is afterTotal (or before) minus what its roles received in total; the
        // global dust moves by the difference. Each asset's dust is >= 0, so the sum stays >= 0.
        uint256 amount = t.afterTotal - t.before;
        uint256 paidNow = fee + developerShare + dataShare + creatorShare + parentsShare;
        _dust[currency] = _dust[currency] + amount - paidNow;
        emit Distributed(asset, currency, amount, creatorShare, developerShare, dataShare, parentsShare, fee);
    }

    /// @inheritdoc IRoyaltySplitter
    function claimDataShare(
        uint256 modelId,
        address currency,
        address originator,
        uint256 weight,
        bytes32[] calldata proof
    ) external {
        if (weight == 0 || weight > WEIGHT_SCALE) revert RoyaltySplitter__BadWeight(weight);
        (,,, bytes32 dataRoot) = MODELS.royaltyOf(modelId);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(originator, weight))));
        if (dataRoot == bytes32(0) || !MerkleProof.verifyCalldata(proof, dataRoot, leaf)) {
            revert RoyaltySplitter__InvalidDataProof(modelId, originator);
        }
        uint256 pool = _dataPool[modelId][currency];
        uint256 claimed = _dataClaimed[modelId][currency][leaf];
        uint256 entitled = pool * weight / WEIGHT_SCALE;
        uint256 owed = entitled > claimed ? entitled - claimed : 0;
        uint256 left = pool - _dataPaid[modelId][currency];
        // Only a root whose weights add up to more than WEIGHT_SCALE can make this bind.
        if (owed > left) owed = left;
        if (owed == 0) revert RoyaltySplitter__NothingToClaim(modelId, originator);
        _dataClaimed[modelId][currency][leaf] = claimed + owed;
        _dataPaid[modelId][currency] += owed;
        _balances[originator][currency] += owed;
        emit DataShareClaimed(modelId, originator, currency, owed);
    }

    // ------------------------------------------------------------------ outflows

    /// @inheritdoc IRoyaltySplitter
    function withdraw(address currency, address to) external nonReentrant {
        if (to == address(0)) revert RoyaltySplitter__ZeroRecipient();
        uint256 amount = _balances[msg.sender][currency];
        if (amount == 0) revert RoyaltySplitter__NothingToWithdraw(msg.sender, currency);
        _balances[msg.sender][currency] = 0;
        _withdrawn[currency] += amount;
        emit Withdrawn(msg.sender, currency, to, amount);
        _send(currency, to, amount);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IRoyaltySplitter
    function balanceOf(address account, address currency) external view returns (uint256) {
        return _balances[account][currency];
    }

    /// @inheritdoc IRoyaltySplitter
    function pendingRevenueOf(bytes32 asset, address currency) external view returns (uint256) {
        return _pending[asset][currency] + _pendingInherited[asset][currency];
    }

    /// @inheritdoc IRoyaltySplitter
    function pendingInheritedOf(bytes32 asset, address currency) external view returns (uint256) {
        return _pendingInherited[asset][currency];
    }

    /// @inheritdoc IRoyaltySplitter
    function distributedOf(bytes32 asset, address currency) external view returns (uint256) {
        Progress storage progress = _progress[asset][currency];
        if (!PROVENANCE.exists(asset) || progress.seqPlusOne != PROVENANCE.getAsset(asset).seq + 1) return 0;
        return progress.total;
    }

    /// @inheritdoc IRoyaltySplitter
    function dataPoolOf(uint256 modelId, address currency) external view returns (uint256 total, uint256 paid) {
        return (_dataPool[modelId][currency], _dataPaid[modelId][currency]);
    }

    /// @inheritdoc IRoyaltySplitter
    function dataClaimedOf(uint256 modelId, address currency, address originator, uint256 weight)
        external
        view
        returns (uint256)
    {
        return _dataClaimed[modelId][currency][keccak256(bytes.concat(keccak256(abi.encode(originator, weight))))];
    }

    /// @inheritdoc IRoyaltySplitter
    function reserveOf(address currency) external view returns (uint256) {
        return _reserve[currency];
    }

    /// @inheritdoc IRoyaltySplitter
    function dustOf(address currency) external view returns (uint256) {
        return _dust[currency];
    }

    /// @inheritdoc IRoyaltySplitter
    function totalsOf(address currency) external view returns (uint256 deposited, uint256 withdrawn) {
        return (_deposited[currency], _withdrawn[currency]);
    }

    // ------------------------------------------------------------------ internals

    function _splitOf(bytes32 asset) private view returns (Split memory split) {
        IProvenanceRegistry.Asset memory record = PROVENANCE.getAsset(asset);
        (address developer, uint16 developerBps, uint16 dataBps,) = MODELS.royaltyOf(record.modelId);
        (bytes32[] memory parents, uint16[] memory parentBps) = PROVENANCE.parentsOf(asset);
        uint256 taken = uint256(PROTOCOL_FEE_BPS) + developerBps + dataBps;
        for (uint256 i = 0; i < parentBps.length; ++i) {
            taken += parentBps[i];
        }
        split = Split({
            seq: record.seq,
            creator: record.creator,
            developer: developer,
            modelId: record.modelId,
            developerBps: developerBps,
            dataBps: dataBps,
            // The registry refused any stack above 100% at registration.
            creatorBps: _BPS - taken,
            parents: parents,
            parentBps: parentBps
        });
    }

    /// @dev Cumulative distribution of one asset in one currency, before and after a distribution.
    struct Totals {
        uint256 before;
        uint256 afterTotal;
        uint256 inheritedBefore;
        uint256 inheritedAfter;
    }

    /// @dev Takes an asset's pending revenue (its own and inherited) into its cumulative totals.
    ///      Totals of an earlier record of the asset (taken over since) count as nothing: the new
    ///      record's shares start from zero, so no role is ever asked to give back a floor
    ///      (what the earlier record's floors left stays in the dust).
    function _advanceTotals(bytes32 asset, address currency, uint256 seq) private returns (Totals memory t) {
        uint256 direct = _pending[asset][currency];
        uint256 inherited = _pendingInherited[asset][currency];
        if (direct + inherited == 0) revert RoyaltySplitter__NothingToDistribute(asset, currency);
        Progress storage progress = _progress[asset][currency];
        uint48 key = SafeCast.toUint48(seq + 1);
        if (progress.seqPlusOne == key) {
            t.before = progress.total;
            t.inheritedBefore = progress.inherited;
        }
        t.afterTotal = t.before + direct + inherited;
        t.inheritedAfter = t.inheritedBefore + inherited;
        if (direct != 0) _pending[asset][currency] = 0;
        if (inherited != 0) _pendingInherited[asset][currency] = 0;
        progress.total = t.afterTotal;
        if (t.inheritedAfter != t.inheritedBefore || progress.seqPlusOne != key) {
            progress.inherited = SafeCast.toUint208(t.inheritedAfter);
            progress.seqPlusOne = key;
        }
    }

    /// @dev Credits each parent's share as the parent's inherited revenue; returns their sum.
    function _creditParents(bytes32 asset, address currency, Split memory split, Totals memory t)
        private
        returns (uint256 parentsShare)
    {
        for (uint256 i = 0; i < split.parents.length; ++i) {
            uint256 share = _increment(t.before, t.afterTotal, split.parentBps[i]);
            if (share == 0) continue;
            parentsShare += share;
            _pendingInherited[split.parents[i]][currency] += share;
            emit ParentCredited(asset, split.parents[i], currency, share);
        }
    }

    /// @dev What a role with `bps` receives when an asset's cumulative distribution goes from
    ///      `before` to `afterTotal`: the growth of floor(total * bps / 10_000).
    function _increment(uint256 before, uint256 afterTotal, uint256 bps) private pure returns (uint256) {
        return afterTotal * bps / _BPS - before * bps / _BPS;
    }

    function _checkFunded(address currency, uint256 amount) private view {
        if (currency == address(0)) {
            if (msg.value != amount) revert RoyaltySplitter__WrongPayment(msg.value, amount);
            return;
        }
        if (msg.value != 0) revert RoyaltySplitter__WrongPayment(msg.value, 0);
        uint256 required = _deposited[currency] - _withdrawn[currency] + amount;
        uint256 balance = IERC20(currency).balanceOf(address(this));
        if (balance < required) revert RoyaltySplitter__Underfunded(currency, balance, required);
    }

    function _send(address currency, address to, uint256 amount) private {
        if (currency == address(0)) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert RoyaltySplitter__EthTransferFailed(to, amount);
        } else {
            IERC20(currency).safeTransfer(to, amount);
        }
    }
}
