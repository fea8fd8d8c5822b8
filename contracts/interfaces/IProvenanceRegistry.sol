// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IProvenanceRegistry
/// @notice Registry of generated assets. An asset is an ERC-721 token whose id is the sha256
///         digest of the asset's bytes (the multihash digest of its CIDv1). The record says who
///         made it, with which model version and parameters, from which parent assets, and what
///         input commitment a zk proof of the model's inference must carry.
/// @dev Registration is one asset at a time (`register`), several in one call (`registerMany`),
///      or a batch whose Merkle root is stored (`registerBatchLeaves`: leaves in calldata, root
///      computed here; `registerBatchRoot`: root and manifest address only). A batch member
///      becomes a full record (and a token) through `claimFromBatch` with a Merkle proof.
///
///      Priority: a batch commitment reserves its members for `PRIORITY_WINDOW`. Whoever
///      registers a member's digest after the commitment (directly, or from a later batch) holds
///      it only until the member is claimed within that window: the claim takes the record
///      over (`AssetSuperseded`), and the terms attached to the record taken over sell and
///      license nothing more. Direct registration (`register`, `registerMany`) reserves nothing
///      before its own transaction, and a hidden commitment made before it (by someone who saw
///      the transaction in a public mempool, or who can predict the bytes) may take it over
///      within the window: where third parties can front-run or predict content, register by
///      commitment first and claim within the window (the registrar daemon's commit-claim
///      mode); on L2s whose sequencer keeps a private mempool, direct registration is safe.
///
///      Merkle scheme (mirrored by `agents/merkle.py`):
///      - leaf  = keccak256(0x00 ‖ abi.encode(AssetInput, uint256[] licenseIds)): a member's
///        licences are part of what its batch commits to, so nobody can claim it with others
///      - node  = keccak256(0x01 ‖ left ‖ right)
///      - levels are built left to right; an odd last node is carried up unchanged;
///      - a proof lists the siblings from the leaf up; the leaf index and the batch's leaf count
///        fix which side each sibling is on and how many there must be.
///      The prefixes make a leaf and an inner node different preimages, so an inner node can never
///      be passed as a leaf; positions make swapped siblings fail; carrying the odd node (instead
///      of duplicating it) means no two leaf sequences of one batch share a root.
interface IProvenanceRegistry {
    /// @notice What an attesting model version's bands make of an asset's proven score (see
    ///         `IModelRegistry.bindVerifier`): `Accept` when score >= acceptAt, `Reject` when
    ///         score < reviewAt, `Review` otherwise. `None`: not attested.
    enum Verdict {
        None,
        Reject,
        Review,
        Accept
    }

    /// @notice What the registrant asserts about one asset.
    /// @param contentDigest sha256 of the asset bytes; becomes the token id. Never zero.
    /// @param creator Receives the token and the creator share of revenue.
    /// @param modelId The model version that generated the asset (must be active).
    /// @param paramsDigest Digest of the generation parameters (prompt, negative prompt, seed,
    ///        steps, scheduler, adapters), as written in the provenance manifest.
    /// @param inputCommitment The commitment a proof of a model's inference on this asset must
    ///        carry as a public instance (the Poseidon hash of the input the circuit reads: the
    ///        image embedding, then the proven digest `provenDigestOf(contentDigest)`); 0 if none.
    /// @param parents Parent assets of a derivative, strictly ascending, at most `MAX_PARENTS`.
    /// @param metadataURI ERC-721 metadata (content-addressed URI expected).
    struct AssetInput {
        bytes32 contentDigest;
        address creator;
        uint256 modelId;
        bytes32 paramsDigest;
        bytes32 inputCommitment;
        bytes32[] parents;
        string metadataURI;
    }

    /// @notice A stored asset record (metadata URI and parents are read separately).
    /// @param creator The creator named at registration; never changes.
    /// @param modelId The generating model version.
    /// @param depth 0 for an original, else 1 + the deepest parent's depth.
    /// @param parentCount Number of parents.
    /// @param seq Registration number (0 for the first asset): the id `attestInference` takes.
    ///        Attestation records of assets registered together share storage words, which is
    ///        what keeps them cheap.
    /// @param paramsDigest Digest of the generation parameters.
    /// @param inputBinding keccak256(abi.encode(provenDigestOf(contentDigest), inputCommitment)),
    ///        0 when the asset registered no commitment (the commitment itself is in
    ///        `AssetRegistered`): what a proof's instances for the asset must hash to.
    struct Asset {
        address creator;
        uint32 modelId;
        uint8 depth;
        uint8 parentCount;
        uint48 seq;
        bytes32 paramsDigest;
        bytes32 inputBinding;
    }

    /// @notice A committed batch (whether its leaves travelled in calldata is in `BatchCommitted`).
    /// @param root Merkle root of the batch's leaves.
    /// @param submitter Who committed it; members must be its own assets or those of creators
    ///        that had approved it as registrar before the commitment.
    /// @param leafCount Number of leaves.
    /// @param committedAt Block timestamp of the commitment.
    /// @param assetsBefore `assetCount()` at the commitment: assets with a lower `seq` were
    ///        registered before it, the others after.
    struct Batch {
        bytes32 root;
        address submitter;
        uint24 leafCount;
        uint32 committedAt;
        uint40 assetsBefore;
    }

    /// @notice The content digest is zero.
    error ProvenanceRegistry__ZeroContentDigest();
    /// @notice An asset with this content digest is already registered.
    error ProvenanceRegistry__AlreadyRegistered(bytes32 contentDigest);
    /// @notice The caller (or a batch's submitter) is neither the creator nor a registrar the
    ///         creator approved (for a batch: approved before the batch was committed).
    error ProvenanceRegistry__NotAuthorized(address creator, address caller);
    /// @notice The model version is unknown or was retired before the asset was committed.
    error ProvenanceRegistry__ModelNotActive(uint256 modelId);
    /// @notice More parents than `MAX_PARENTS`.
    error ProvenanceRegistry__TooManyParents(uint256 count, uint256 maxParents);
    /// @notice An asset named itself as parent.
    error ProvenanceRegistry__SelfParent(bytes32 contentDigest);
    /// @notice The same parent appears twice.
    error ProvenanceRegistry__DuplicateParent(bytes32 parent);
    /// @notice Parents are not in strictly ascending order.
    error ProvenanceRegistry__ParentsNotSorted(uint256 index);
    /// @notice A parent is not a registered asset.
    error ProvenanceRegistry__UnknownParent(bytes32 parent);
    /// @notice A claim that takes over a later registration names a parent registered after its
    ///         batch was committed (such a parent could descend from the asset itself).
    error ProvenanceRegistry__ParentAfterCommit(bytes32 parent, uint256 parentSeq, uint256 assetsBefore);
    /// @notice The derivative would be deeper than `MAX_DEPTH`.
    error ProvenanceRegistry__TooDeep(uint256 depth, uint256 maxDepth);
    /// @notice The number of licence ids differs from the number of parents.
    error ProvenanceRegistry__LicenseCountMismatch(uint256 parents, uint256 licenses);
    /// @notice Model share, protocol fee and parents' derivative shares exceed 100%.
    error ProvenanceRegistry__RoyaltyStackTooHigh(uint256 totalBps);
    /// @notice The metadata URI is empty or longer than `MAX_URI_LENGTH` bytes.
    error ProvenanceRegistry__BadMetadataURI(uint256 length, uint256 maxLength);
    /// @notice A batch has no leaves, or more than the mode allows.
    error ProvenanceRegistry__BadBatchSize(uint256 leafCount, uint256 maxLeaves);
    /// @notice A root-only batch was given a zero root or an empty manifest address.
    error ProvenanceRegistry__BadBatchCommitment();
    /// @notice No batch has this id.
    error ProvenanceRegistry__UnknownBatch(uint256 batchId);
    /// @notice The leaf index is not below the batch's leaf count.
    error ProvenanceRegistry__LeafIndexOutOfRange(uint256 index, uint256 leafCount);
    /// @notice The proof has the wrong number of siblings for this index and leaf count.
    error ProvenanceRegistry__BadProofLength(uint256 given, uint256 expected);
    /// @notice The proof does not lead from the leaf to the batch root.
    error ProvenanceRegistry__InvalidProof(uint256 batchId, uint256 index);
    /// @notice No asset has this id.
    error ProvenanceRegistry__UnknownAsset(bytes32 contentDigest);
    /// @notice The caller is neither the owner nor the creator of the token.
    error ProvenanceRegistry__NotOwnerOrCreator(bytes32 contentDigest, address caller);
    /// @notice ERC-7007 data was rejected by `verify`.
    error ProvenanceRegistry__AigcProofRejected(bytes32 contentDigest);
    /// @notice A constructor argument is the zero address or out of range.
    error ProvenanceRegistry__BadConfig();
    /// @notice An attestation names no asset, or more than `MAX_ATTEST_BATCH`.
    error ProvenanceRegistry__BadAttestationSize(uint256 count, uint256 maxCount);
    /// @notice The instances are not one input commitment then one score per asset.
    error ProvenanceRegistry__BadInstanceCount(uint256 given, uint256 expected);
    /// @notice The attesting model version has no verifier bound.
    error ProvenanceRegistry__NoVerifier(uint256 modelId);
    /// @notice A public instance is not a field element (it is >= the BN254 scalar modulus).
    error ProvenanceRegistry__InstanceNotInField(uint256 index, uint256 value);
    /// @notice These exact instances were already attested by this model version for these records.
    error ProvenanceRegistry__StatementAlreadyAttested(bytes32 statement);
    /// @notice No asset has this registration number.
    error ProvenanceRegistry__UnknownSeq(uint256 seq);
    /// @notice The commitment and proven digest at position `index` are not those of record
    ///         `seq` (its input binding): the proof was made for another asset, or another input.
    error ProvenanceRegistry__InputBindingMismatch(uint256 seq, uint256 index);
    /// @notice A decoded score is not strictly between -2^29 and 2^29 (the 30-bit signed
    ///         attestation record).
    error ProvenanceRegistry__ScoreOutOfRange(uint256 seq, uint256 instance);
    /// @notice The asset already has an attestation by this model version.
    error ProvenanceRegistry__AlreadyAttested(uint256 seq, uint256 modelId);
    /// @notice The code at the model version's verifier is not the code pinned when it was bound.
    error ProvenanceRegistry__VerifierCodeChanged(uint256 modelId, address verifier);
    /// @notice The model version's verifier rejected the proof (returned false or reverted).
    error ProvenanceRegistry__ProofRejected(uint256 modelId);

    /// @notice Emitted for every registered asset (single, or claimed from a batch).
    ///         `seq` is its registration number, the id `attestInference` names it by.
    event AssetRegistered(
        bytes32 indexed contentDigest,
        address indexed creator,
        uint256 indexed modelId,
        bytes32 paramsDigest,
        bytes32 inputCommitment,
        bytes32[] parents,
        uint256 batchId,
        uint256 seq,
        string metadataURI
    );
    /// @notice Emitted when a batch root is committed. `manifestURI` is empty for calldata batches.
    event BatchCommitted(
        uint256 indexed batchId,
        address indexed submitter,
        bytes32 indexed root,
        uint256 leafCount,
        bool leavesOnChain,
        string manifestURI
    );
    /// @notice Emitted (after its `AssetRegistered`) when a batch member's claim takes over a
    ///         record registered after the batch was committed.
    /// @param contentDigest The asset.
    /// @param previousCreator The creator of the record taken over.
    /// @param creator The member's creator, who now holds the token and the record.
    /// @param batchId The batch whose commitment came first.
    /// @param previousSeq The registration number of the record taken over (attestations made
    ///        under it no longer belong to the asset).
    event AssetSuperseded(
        bytes32 indexed contentDigest,
        address indexed previousCreator,
        address indexed creator,
        uint256 batchId,
        uint256 previousSeq
    );
    /// @notice Emitted when a creator approves or revokes a registrar.
    /// @param firstBatchId The first batch id the approval covers (0 when revoked): batches
    ///        committed before the approval stay unclaimable in the creator's name.
    event RegistrarSet(address indexed creator, address indexed registrar, bool approved, uint256 firstBatchId);
    /// @notice Emitted when a proof attests the inference of `modelId` on each asset's input.
    /// @param modelId The attesting model version.
    /// @param statement keccak256(abi.encode(modelId, seqs, instances)), `seqs` the assets'
    ///        registration numbers: the proven statement about these records.
    /// @param seqs The attested assets' registration numbers (see `AssetRegistered`), in
    ///        instance order.
    /// @param scores Each asset's decoded fixed-point score (scale set by the circuit settings).
    /// @param verdicts Each asset's verdict under the model version's bands (never `None`).
    event InferenceAttested(
        uint256 indexed modelId, bytes32 indexed statement, uint256[] seqs, int256[] scores, Verdict[] verdicts
    );

    /// @notice Registers one asset and mints its token to the creator.
    /// @dev The caller must be the creator or an approved registrar. A derivative passes one
    ///      licence id per parent (same order); each licence must be held by the creator, allow
    ///      derivatives and be unexpired, and one unit of it is consumed.
    /// @param input The asset record.
    /// @param licenseIds ERC-1155 licence token ids, one per parent (empty for an original).
    function register(AssetInput calldata input, uint256[] calldata licenseIds) external;

    /// @notice Registers several assets in one transaction, each exactly as `register` would
    ///         (full record, token to its creator, `AssetRegistered` with batch id 0).
    /// @dev For each asset the caller must be its creator or an approved registrar. All or
    ///      nothing: one failing asset reverts the call with that asset's error. At most
    ///      `MAX_REGISTER_MANY` assets; `licenseIds[i]` are asset i's licences, one per parent.
    /// @param inputs The asset records.
    /// @param licenseIds One list of licence ids per asset (empty lists for originals).
    function registerMany(AssetInput[] calldata inputs, uint256[][] calldata licenseIds) external;

    /// @notice Commits a batch whose leaves are all given here; the root is computed on chain.
    /// @dev Leaves are `leafOf(input, licenseIds)` values; at most `MAX_BATCH_LEAVES`. Nothing is
    ///      checked about the members until they are claimed; the commitment reserves them (see
    ///      the priority rule above).
    /// @param leaves The leaves in order.
    /// @return batchId The new batch id (ids start at 1).
    function registerBatchLeaves(bytes32[] calldata leaves) external returns (uint256 batchId);

    /// @notice Commits a batch by its root and the content address of its manifest.
    /// @dev The leaves live off chain in the manifest; at most `MAX_ROOT_BATCH_LEAVES`.
    /// @param root The Merkle root.
    /// @param leafCount Number of leaves under the root.
    /// @param manifestURI Content address of the batch manifest (e.g. ipfs://bafy...).
    /// @return batchId The new batch id.
    function registerBatchRoot(bytes32 root, uint256 leafCount, string calldata manifestURI)
        external
        returns (uint256 batchId);

    /// @notice Turns a batch member into a full record and mints its token to its creator.
    /// @dev Anyone may call: the leaf fixes everything, licences included. The member's creator
    ///      must be the batch submitter or have approved the submitter as registrar before the
    ///      batch was committed; its model must not have been retired before the commitment; the
    ///      same checks as `register` apply to parents and licences (the committed licences are
    ///      taken from the creator at claim time).
    ///      When the digest is already registered, a claim within `PRIORITY_WINDOW` of the
    ///      commitment takes another creator's record over if that record came later: registered
    ///      directly after the commitment, or claimed from a batch committed after this one. A
    ///      creator's own record (of either kind) stands: of two versions one creator committed,
    ///      the first claimed is the asset. On a takeover the token moves to the member's creator
    ///      (whoever holds it), the record is replaced under a new `seq`, every parent must have
    ///      been registered before the commitment, and the licence manager voids the terms
    ///      attached before. Otherwise the claim reverts `AlreadyRegistered`.
    /// @param batchId The batch.
    /// @param index The member's leaf index.
    /// @param input The member's record.
    /// @param proof Sibling hashes from the leaf up.
    /// @param licenseIds Licence ids, one per parent, as committed in the leaf.
    function claimFromBatch(
        uint256 batchId,
        uint256 index,
        AssetInput calldata input,
        bytes32[] calldata proof,
        uint256[] calldata licenseIds
    ) external;

    /// @notice Records a zk proof that model version `modelId` computed each asset's score from
    ///         exactly the input the asset registered, and that the proof was made for that asset,
    ///         with the verdict the model version's bands make of the score.
    /// @dev Anyone may call: the proof is the authority. Assets are named by registration
    ///      number (`getAsset(contentDigest).seq`, also in `AssetRegistered`). With
    ///      n = `seqs.length` (1..`MAX_ATTEST_BATCH`), `instances` must be EZKL's layout for a
    ///      circuit of n hashed inputs and two public outputs: the n input commitments, then the
    ///      n scores, then the n proven digests (asset i's `provenDigestOf(contentDigest)`: the
    ///      circuit reads it as the last element of its hashed input and passes it through to a
    ///      public output). Asset i's commitment and proven digest must hash to its record's
    ///      `inputBinding`, so a proof names the assets it was made for, and a commitment copied
    ///      onto other content attests nothing. The statement hashes the records' numbers and
    ///      the instances.
    ///      Reverts when the model has no verifier, its verifier's code is not the pinned code or
    ///      the model is retired, the statement was attested before, an instance is not a field
    ///      element, a number names no asset or its binding is not its instances', a score's
    ///      magnitude is 2^29 or more, an asset already has an attestation by this model, or the
    ///      verifier rejects. Negative scores arrive as field elements `modulus - |x|`. Each
    ///      (asset record, model version) is attested once, so its score and verdict never
    ///      change; the bands are those bound with the verifier, which never change either.
    /// @param modelId The attesting model version (its bound verifier checks the proof).
    /// @param seqs The assets' registration numbers, in instance order.
    /// @param proof The serialized proof, as the verifier takes it.
    /// @param instances The public instances: n commitments, n scores, n proven digests.
    function attestInference(
        uint256 modelId,
        uint256[] calldata seqs,
        bytes calldata proof,
        uint256[] calldata instances
    ) external;

    /// @notice Returns the attestation of an asset by a model version.
    /// @dev Reverts for an unknown asset.
    /// @param contentDigest The asset.
    /// @param modelId The attesting model version.
    /// @return attested True once a proof attested it.
    /// @return score The decoded fixed-point score (0 when not attested).
    /// @return verdict The verdict recorded with the score (`None` when not attested).
    function attestationOf(bytes32 contentDigest, uint256 modelId)
        external
        view
        returns (bool attested, int256 score, Verdict verdict);

    /// @notice Returns whether a statement (see `InferenceAttested`) was attested.
    /// @param statement keccak256(abi.encode(modelId, seqs, instances)) (see `InferenceAttested`).
    /// @return True once attested.
    function isStatementAttested(bytes32 statement) external view returns (bool);

    /// @notice The proven digest of a content digest: how a proof's public instances name the
    ///         asset (`uint256(keccak256(abi.encode(contentDigest))) >> 3`, the top 253 bits of
    ///         the digest's keccak256, one field element).
    /// @param contentDigest Any 32-byte content digest (registered or not).
    /// @return The proven digest, below 2^253.
    function provenDigestOf(bytes32 contentDigest) external pure returns (uint256);

    /// @notice Returns the number of registered assets (the next asset's `seq`).
    /// @return The count.
    function assetCount() external view returns (uint256);

    /// @notice Lets `registrar` register assets in the caller's name (or stops it).
    /// @dev An approval covers direct registrations from now on and batches committed from now
    ///      on (the first is `batchCount() + 1`); approving an approved registrar again keeps its
    ///      earlier start. A revocation also stops claims of batches it committed before.
    /// @param registrar The platform or agent key.
    /// @param approved True to approve, false to revoke.
    function setRegistrar(address registrar, bool approved) external;

    /// @notice Returns whether `registrar` may register for `creator`.
    /// @param creator The creator.
    /// @param registrar The registrar.
    /// @return True when approved.
    function isRegistrar(address creator, address registrar) external view returns (bool);

    /// @notice Returns the first batch id `registrar`'s approval by `creator` covers.
    /// @param creator The creator.
    /// @param registrar The registrar.
    /// @return The first batch id claimable in the creator's name, or 0 when not approved.
    function registrarSince(address creator, address registrar) external view returns (uint256);

    /// @notice Returns the batch an asset's record was claimed from, or 0 for one registered directly.
    /// @param contentDigest The asset id.
    /// @return The batch id.
    function claimedFrom(bytes32 contentDigest) external view returns (uint256);

    /// @notice Returns an asset record; reverts for an unknown asset.
    /// @param contentDigest The asset id.
    /// @return The record.
    function getAsset(bytes32 contentDigest) external view returns (Asset memory);

    /// @notice Returns whether an asset is registered.
    /// @param contentDigest The asset id.
    /// @return True when registered.
    function exists(bytes32 contentDigest) external view returns (bool);

    /// @notice Returns the creator of an asset, or address(0) when unknown.
    /// @param contentDigest The asset id.
    /// @return The creator.
    function creatorOf(bytes32 contentDigest) external view returns (address);

    /// @notice Returns the parents of an asset and the derivative share each receives.
    /// @dev Reverts for an unknown asset.
    /// @param contentDigest The asset id.
    /// @return parents Parent ids in ascending order.
    /// @return shareBps The derivative royalty share of each parent, in basis points.
    function parentsOf(bytes32 contentDigest) external view returns (bytes32[] memory parents, uint16[] memory shareBps);

    /// @notice Returns a batch; reverts for an unknown id.
    /// @param batchId The batch.
    /// @return The batch.
    function getBatch(uint256 batchId) external view returns (Batch memory);

    /// @notice Returns the number of committed batches (the highest id).
    /// @return The count.
    function batchCount() external view returns (uint256);

    /// @notice Computes the leaf of an asset record and its licences, as batch roots commit to it.
    /// @param input The record.
    /// @param licenseIds The licence ids its claim will consume, one per parent.
    /// @return The leaf hash.
    function leafOf(AssetInput calldata input, uint256[] calldata licenseIds) external pure returns (bytes32);

    /// @notice Computes the root a batch proof leads to (what `claimFromBatch` compares with).
    /// @dev Reverts with `BadProofLength` when the proof length does not fit `index` and `leafCount`.
    /// @param leaf The leaf.
    /// @param index The leaf index.
    /// @param leafCount The batch's leaf count.
    /// @param proof Siblings from the leaf up.
    /// @return The root.
    function processBatchProof(bytes32 leaf, uint256 index, uint256 leafCount, bytes32[] calldata proof)
        external
        pure
        returns (bytes32);

    /// @notice Computes the root of a list of leaves with the batch tree scheme.
    /// @param leaves The leaves (at least one).
    /// @return The root.
    function rootOf(bytes32[] calldata leaves) external pure returns (bytes32);
}
