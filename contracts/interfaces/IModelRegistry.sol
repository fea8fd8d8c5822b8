// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IModelRegistry
/// @notice Registry of generative model versions: who developed each one, which weights it is,
///         how its inference is proven, and what share of asset revenue its developer and its
///         training-data originators are owed.
/// @dev A model version is append-only: its weights digest, parameter commitment and royalty
///      shares never change after registration. The zk verifier is bound once, with the hash of
///      its code, which the provenance registry checks on every call, and with the bands that
///      turn a proven score into a verdict; a different verifier or other bands mean a new model
///      version. Training-data originators are committed as a Merkle root of
///      (originator, weight) pairs so any number of them costs O(1) here; the royalty splitter
///      checks claims against that root.
///
///      A weights digest is not an identity that one party may hold: anyone may register a
///      version of any weights (the registry cannot tell who trained them), so versions are
///      found by developer and digest (`modelIdOf`). Registering someone else's digest first
///      gains nothing: agents and auditors look a model up under the developer they trust.
interface IModelRegistry {
    /// @notice A registered model version.
    /// @param developer Receives the developer share; moves only by the two-step transfer.
    /// @param weightsDigest sha256 of the canonical weights file(s); one version per developer.
    /// @param paramsCommitment Commitment to the model parameters used in zk circuits (0 if none).
    ///        Informational: circuits fix their parameters into the verifying key, so the pinned
    ///        verifier code is what the chain enforces; auditors compare this with the circuit.
    /// @param dataRoot Merkle root of (originator, weight) pairs; 0 when `dataBps` is 0.
    /// @param verifier On-chain verifier of inference proofs; address(0) until bound.
    /// @param acceptAt Lowest proven score (fixed point, the circuit's output scale) judged
    ///        `Accept`; bound with the verifier, 0 until then.
    /// @param reviewAt Lowest proven score judged `Review` (below it: `Reject`); at most
    ///        `acceptAt`; bound with the verifier, 0 until then.
    /// @param vkDigest Digest of the verifying key the verifier embeds; 0 until bound.
    ///        Informational (auditors compare it with the rendered verifier); the chain enforces
    ///        `verifierCodeHash`.
    /// @param verifierCodeHash EXTCODEHASH of the verifier when it was bound; 0 until bound.
    /// @param predecessor Id of the version this one supersedes (0 for a first version).
    /// @param developerBps Developer share of asset revenue, in basis points.
    /// @param dataBps Training-data originators' share of asset revenue, in basis points.
    /// @param registeredAt Block timestamp of registration.
    /// @param retiredAt Block timestamp of retirement, 0 while active; assets committed after it
    ///        may not use the version.
    /// @param metadataURI Off-chain model card (content-addressed URI expected).
    struct ModelVersion {
        address developer;
        bytes32 weightsDigest;
        bytes32 paramsCommitment;
        bytes32 dataRoot;
        address verifier;
        int32 acceptAt;
        int32 reviewAt;
        bytes32 vkDigest;
        bytes32 verifierCodeHash;
        uint256 predecessor;
        uint16 developerBps;
        uint16 dataBps;
        uint64 registeredAt;
        uint64 retiredAt;
        string metadataURI;
    }

    /// @notice Input of `registerModel`.
    struct ModelInput {
        bytes32 weightsDigest;
        bytes32 paramsCommitment;
        bytes32 dataRoot;
        uint256 predecessor;
        uint16 developerBps;
        uint16 dataBps;
        string metadataURI;
    }

    /// @notice The weights digest is zero.
    error ModelRegistry__ZeroWeightsDigest();
    /// @notice The developer already has a model version of these weights: `existingId`.
    error ModelRegistry__WeightsAlreadyRegistered(bytes32 weightsDigest, uint256 existingId);
    /// @notice Developer plus data shares exceed `MAX_MODEL_SHARE_BPS`.
    error ModelRegistry__SharesTooHigh(uint256 totalBps, uint256 maxBps);
    /// @notice A data share was given without a data root, or a data root without a share.
    error ModelRegistry__DataRootMismatch(bytes32 dataRoot, uint16 dataBps);
    /// @notice The metadata URI is empty or longer than `MAX_URI_LENGTH` bytes.
    error ModelRegistry__BadMetadataURI(uint256 length, uint256 maxLength);
    /// @notice No model version has this id.
    error ModelRegistry__UnknownModel(uint256 modelId);
    /// @notice The caller is not the developer of the model version.
    error ModelRegistry__NotDeveloper(uint256 modelId, address caller);
    /// @notice The model version is retired.
    error ModelRegistry__ModelRetired(uint256 modelId);
    /// @notice The model version already has a verifier bound.
    error ModelRegistry__VerifierAlreadySet(uint256 modelId, address verifier);
    /// @notice The verifier address holds no code, or the verifying-key digest is zero.
    error ModelRegistry__BadVerifier(address verifier, bytes32 vkDigest);
    /// @notice `reviewAt` is above `acceptAt`, or a band edge is not strictly between -2^29 and
    ///         2^29 (the scores an attestation record holds).
    error ModelRegistry__BadBands(int32 acceptAt, int32 reviewAt);
    /// @notice A predecessor already has a successor; versions form a chain, not a tree.
    error ModelRegistry__AlreadySucceeded(uint256 predecessor, uint256 successor);
    /// @notice The new developer is the zero address.
    error ModelRegistry__ZeroDeveloper();
    /// @notice The caller is not the pending developer of the model version.
    error ModelRegistry__NotPendingDeveloper(uint256 modelId, address caller);

    /// @notice Emitted when a model version is registered.
    event ModelRegistered(
        uint256 indexed modelId,
        address indexed developer,
        bytes32 indexed weightsDigest,
        uint256 predecessor,
        uint16 developerBps,
        uint16 dataBps,
        bytes32 dataRoot,
        bytes32 paramsCommitment,
        string metadataURI
    );
    /// @notice Emitted when a verifier, its verifying-key digest and the verdict bands are bound to
    ///         a model version.
    /// @param modelId The model version.
    /// @param verifier The verifier contract.
    /// @param vkDigest Digest of the verifying key the verifier embeds.
    /// @param codeHash The pinned EXTCODEHASH of the verifier.
    /// @param acceptAt Lowest score judged `Accept`.
    /// @param reviewAt Lowest score judged `Review` (below it: `Reject`).
    event VerifierBound(
        uint256 indexed modelId,
        address indexed verifier,
        bytes32 vkDigest,
        bytes32 codeHash,
        int32 acceptAt,
        int32 reviewAt
    );
    /// @notice Emitted when a model version is retired.
    event ModelRetired(uint256 indexed modelId);
    /// @notice Emitted when a developer starts handing a model version to `pendingDeveloper`.
    event DeveloperTransferStarted(uint256 indexed modelId, address indexed developer, address indexed pendingDeveloper);
    /// @notice Emitted when the pending developer accepts a model version.
    event DeveloperTransferred(uint256 indexed modelId, address indexed previousDeveloper, address indexed newDeveloper);

    /// @notice Registers a model version developed by the caller.
    /// @dev Reverts when the caller already has a version of these weights, the shares exceed the cap, the data
    ///      root and data share disagree, the URI is empty or too long, or a predecessor is given
    ///      that is unknown, not the caller's, or already succeeded.
    /// @param input The version's weights digest, commitments, predecessor, shares and URI.
    /// @return modelId The new version's id (ids start at 1).
    function registerModel(ModelInput calldata input) external returns (uint256 modelId);

    /// @notice Binds the zk verifier of a model version and the bands that turn its proven score
    ///         into a verdict, once, and pins the hash of the verifier's code.
    /// @dev Only the developer; the version must not be retired or already have a verifier; the
    ///      verifier must hold code and the verifying-key digest must not be zero; `reviewAt` must
    ///      not exceed `acceptAt`, and both must lie strictly between -2^29 and 2^29. A score q
    ///      (fixed point, the circuit's output scale) is judged `Accept` when q >= acceptAt,
    ///      `Reject` when q < reviewAt, `Review` otherwise (`IProvenanceRegistry.Verdict`);
    ///      `reviewAt == acceptAt` leaves no review band, and bands at the edges judge every
    ///      score alike. Nothing here ties a verifier or bands to the weights: anyone may
    ///      register a version of any weights, bind a copy of any verifier with bands of their
    ///      own and replay a public proof under it, so which versions' verdicts count is the
    ///      reader's decision (`proofmint verify` names each attesting version's developer and
    ///      bands, and fails when versions disagree).
    /// @param modelId The model version.
    /// @param verifier The verifier contract (EZKL-generated).
    /// @param vkDigest Digest of the verifying key the verifier embeds.
    /// @param acceptAt Lowest score judged `Accept`.
    /// @param reviewAt Lowest score judged `Review`.
    function bindVerifier(uint256 modelId, address verifier, bytes32 vkDigest, int32 acceptAt, int32 reviewAt)
        external;

    /// @notice Retires a model version: it stays readable but no new asset may use it.
    /// @dev Only the developer; retiring twice reverts.
    /// @param modelId The model version.
    function retire(uint256 modelId) external;

    /// @notice Starts moving a model version to a new developer; the new one must accept.
    /// @dev Only the developer. Passing the current pending developer again is allowed; a later
    ///      call replaces an earlier pending one.
    /// @param modelId The model version.
    /// @param newDeveloper The address that will receive the developer share once it accepts.
    function transferDeveloper(uint256 modelId, address newDeveloper) external;

    /// @notice Accepts a pending developer transfer.
    /// @dev Only the pending developer of `modelId`. The version is then found under the new
    ///      developer (`modelIdOf`); reverts when the new developer already has a version of the
    ///      same weights.
    /// @param modelId The model version.
    function acceptDeveloper(uint256 modelId) external;

    /// @notice Returns a model version; reverts for an unknown id.
    /// @param modelId The model version.
    /// @return The stored version.
    function getModel(uint256 modelId) external view returns (ModelVersion memory);

    /// @notice Returns whether `modelId` exists and is not retired.
    /// @param modelId The model version.
    /// @return True for a live version.
    function isActive(uint256 modelId) external view returns (bool);

    /// @notice Returns what the royalty splitter needs of a model version, in one cheap call.
    /// @dev Reverts for an unknown id.
    /// @param modelId The model version.
    /// @return developer The current developer.
    /// @return developerBps The developer share in basis points.
    /// @return dataBps The training-data originators' share in basis points.
    /// @return dataRoot Merkle root of (originator, weight) pairs.
    function royaltyOf(uint256 modelId)
        external
        view
        returns (address developer, uint16 developerBps, uint16 dataBps, bytes32 dataRoot);

    /// @notice Returns the block timestamp at which a model version was retired, 0 while active.
    /// @dev Reverts for an unknown id.
    /// @param modelId The model version.
    /// @return The retirement timestamp.
    function retiredAt(uint256 modelId) external view returns (uint64);

    /// @notice Returns the verifier bound to a model version, its verifying-key digest and the
    ///         hash of its code when it was bound.
    /// @dev Reverts for an unknown id; all are zero until bound.
    /// @param modelId The model version.
    /// @return verifier The verifier contract.
    /// @return vkDigest The verifying-key digest.
    /// @return codeHash The pinned EXTCODEHASH of the verifier.
    function verifierOf(uint256 modelId) external view returns (address verifier, bytes32 vkDigest, bytes32 codeHash);

    /// @notice Returns the verdict bands of a model version.
    /// @dev Reverts for an unknown id; both are zero until a verifier is bound.
    /// @param modelId The model version.
    /// @return acceptAt Lowest score judged `Accept`.
    /// @return reviewAt Lowest score judged `Review` (below it: `Reject`).
    function bandsOf(uint256 modelId) external view returns (int32 acceptAt, int32 reviewAt);

    /// @notice Returns what the provenance registry needs to attest an inference of a model
    ///         version, in one call.
    /// @dev Reverts for an unknown id; all but `retiredAt` are zero until a verifier is bound.
    /// @param modelId The model version.
    /// @return verifier The verifier contract.
    /// @return codeHash The pinned EXTCODEHASH of the verifier.
    /// @return retiredAt The retirement timestamp, 0 while active.
    /// @return acceptAt Lowest score judged `Accept`.
    /// @return reviewAt Lowest score judged `Review` (below it: `Reject`).
    function attestationTermsOf(uint256 modelId)
        external
        view
        returns (address verifier, bytes32 codeHash, uint64 retiredAt, int32 acceptAt, int32 reviewAt);

    /// @notice Returns the id of `developer`'s version of the weights, or 0.
    /// @param developer The developer (current, after any transfer).
    /// @param weightsDigest sha256 of the weights.
    /// @return The model id, or 0 when none.
    function modelIdOf(address developer, bytes32 weightsDigest) external view returns (uint256);

    /// @notice Returns the pending developer of a model version, or address(0).
    /// @param modelId The model version.
    /// @return The pending developer.
    function pendingDeveloper(uint256 modelId) external view returns (address);

    /// @notice Returns the successor of a model version, or 0.
    /// @param modelId The model version.
    /// @return The id of the version that names `modelId` as predecessor.
    function successorOf(uint256 modelId) external view returns (uint256);

    /// @notice Returns the number of registered model versions (the highest id).
    /// @return The count.
    function modelCount() external view returns (uint256);
}
