// SPDX-License-Identifier: Apache-2.0
// Phalanx's registry on an EVM chain: the same rules as the embedded ledger
// (chain/src/state.rs). Compiled with solcjs (npm `solc`, version pinned in .ci/run)
// into Registry.json, which is committed; CI recompiles it and fails on drift.
//
// Accounts differ from the embedded ledger: a worker's account is the Ethereum account
// that registered its identity key with a proof of possession (a P-256 signature by the
// identity key over the chain id, this contract and the account, checked with the
// P256VERIFY precompile, EIP-7951 / RIP-7212 at 0x100), so nobody can claim another's
// key; only that account may refresh the registration. Replays are prevented by the
// chain's own nonces. An epoch's keys are published only with every gatekeeper's
// signed confirmation of the round that produced them (keyvault::round), verified here
// byte for byte as the Rust rules verify them.
//
// Every allowed measurement carries a role (1 pRuntime, 2 gatekeeper, 3 application):
// only a registered pRuntime publishes contract keys, only a registered gatekeeper joins
// the gatekeeper set.
//
// Evidence. Unlike the embedded ledger, this contract does not verify DCAP quotes itself
// (about 4-5 M gas in Solidity). A registration enters only with *endorsements*: P-256
// signatures of the current gatekeeper set over the record (registry id, identity key,
// HPKE key, tenant, token hash, quote hash, TCB status, evidence time), at least the
// committee's threshold of distinct members in standing. Each gatekeeper checks the
// quote itself (chain::endorse: the same steps as the ledger's chain::evidence, to its
// own measured DCAP roots, under this contract's TCB rule) before it signs. So a forged
// registration needs t gatekeepers, the same t that could release every key anyway.
// Before any gatekeeper set exists (bootstrap: the first gatekeepers themselves), and
// while fewer than t members are in standing (recovery after an outage longer than the
// evidence lifetime), governance approves each registration's digest instead, having
// checked the evidence the same way; otherwise approvals are refused. The collateral
// floor (minTcbEvaluationDataNumber) is the endorsers' to enforce: the contract sees
// no collateral. The contract still checks what
// it can: the TCB status is one its rule accepts and the evidence is younger than its
// lifetime; a worker's standing lapses with its evidence.
//
// Facts. Every fact of the embedded ledger's state commitment (chain/src/facts.rs) but
// its evidence rule and its block history is kept here too (and one of this registry's
// own: its TCB rule), key for key and byte for
// byte in the ledger's codec (big-endian integers, byte strings with a u32 length,
// lists with a u16 count), as a hash in its own storage slot: keccak256(FACT_SLOT ‖ key)
// holds keccak256(FACT_VALUE ‖ value), zero when absent. So a block's state root proves
// any fact through eth_getProof, and a verifier reads it with the ledger's decoders
// (chain::evm_proof). A contract's commands are hash-chained into its command log as on
// the ledger (chain::types::command_log over chain::evm_proof::command_record), so a
// worker that reads them from logs checks that none is missing, added or reordered.
//
// Misbehaviour. A Judge contract, created with the registry (its address is judge()),
// checks evidence that a gatekeeper signed statements no honest one signs together (a
// round confirmation of another outcome than the published one; two heads of its
// release log of one size with different roots) and has the registry take the
// accused's registration away for good (fault: faultOf and the fact fault/<key>). The
// ledger also takes a bad partial and a bad dealing; they need P-256 arithmetic the EVM
// lacks. Revert reasons are codes (chain::evm's tables name them): text costs code size
// this contract, near EIP-170's limit, does not have.
pragma solidity 0.8.30;

// P-256 helpers both contracts use (internal: compiled into each).
library P256 {
    address private constant P256VERIFY = address(0x100);

    function compressedKey(bytes calldata k) internal pure returns (bool) {
        return k.length == 33 && (k[0] == 0x02 || k[0] == 0x03);
    }

    // ECDSA P-256 over SHA-256 with the precompile: true only for a valid signature.
    function p256Verify(bytes32 h, bytes32 r, bytes32 sv, bytes32 x, bytes32 y) internal view returns (bool) {
        (bool ok, bytes memory out) = P256VERIFY.staticcall(abi.encodePacked(h, r, sv, x, y));
        return ok && out.length == 32 && uint256(bytes32(out)) == 1;
    }

    // Whether the compressed key `k` is the point (x, y).
    function samePoint(bytes memory k, bytes32 x, bytes32 y) internal pure returns (bool) {
        if (k.length != 33) return false;
        bytes32 kx;
        assembly {
            kx := mload(add(k, 33))
        }
        uint8 parity = uint8(uint256(y) & 1);
        return kx == x && uint8(k[0]) == 2 + parity;
    }
}

// A round's confirmation as both contracts check it.
library Round {
    bytes private constant PEER_MESSAGE = "phalanx/v1/peer-message";

    // What a member signs to confirm a round's outcome (keyvault::round::confirmation_bytes).
    function confirmationHash(bytes32 roundId, uint16 index, bytes32 digest) internal pure returns (bytes32) {
        return sha256(
            abi.encodePacked(PEER_MESSAGE, roundId, uint8(255), index, uint16(0), uint8(0), uint32(32), digest, uint32(0))
        );
    }
}

contract Registry {
    struct Worker {
        bytes identityKey;
        bytes hpkeKey;
        bytes measurement;
        bytes32 attestationHash;
        int64 registeredAt; // the evidence time
        address account;
        bytes32 quoteHash;
        uint8 tcbStatus;
    }

    // A registration: the worker's keys and tenant, and what its evidence proved as the
    // endorsers found it.
    struct Registration {
        bytes identityKey;
        bytes hpkeKey;
        bytes measurement;
        bytes32 attestationHash;
        bytes32 quoteHash;
        uint8 tcbStatus; // chain::types::status_code
        int64 evidenceTime;
    }

    // A gatekeeper's signature over a registration (its identity key as the point x, y).
    struct Endorsement {
        uint16 index;
        bytes32 x;
        bytes32 y;
        bytes32 r;
        bytes32 s;
    }

    struct Gatekeeper {
        uint16 index;
        bytes identityKey;
        string url;
        string peerUrl;
    }

    struct EpochKey {
        bytes masterPublicKey;
        uint16 threshold;
        bytes publicKeySet;
        bytes32 roundId;
        int64 publishedAt;
        bool published;
    }

    // A round spec, as far as the rules read it.
    struct Spec {
        uint8 kind; // 1 DKG, 2 refresh, 3 reshare
        uint64 epoch;
        uint16 threshold; // DKG: t; reshare: t'; refresh: unused
        uint256 participantsAt; // offset of the participant list
    }

    error NotGovernance();
    error NotGovernanceOrGatekeeper();
    error NotSelf();
    error MeasurementNotAllowed(bytes measurement);
    error GatekeeperNotWorker(bytes identityKey);
    error BadGatekeeperSet(uint8 what); // chain::evm::BAD_SET, from 1
    error RotationLocked(uint64 locked);
    error NotLocked(uint64 epoch);
    error EpochNotNext(uint64 epoch, uint64 next);
    error CommitteeMismatch();
    error MissingConfirmation(uint16 index);
    error EpochMismatch(uint8 what); // chain::evm::EPOCH_MISMATCH, from 1
    error RoundAlreadyPublished();
    error RoundAborted();
    error Malformed(uint8 what); // chain::evm::MALFORMED, from 1
    error MeasurementState(bytes measurement, uint8 what); // 1 already allowed, 2 not allowed
    error ContractExists(bytes32 contractId);
    error NoContract(bytes32 contractId);
    error WrongRole(bytes identityKey, uint8 need, uint8 have);
    error ThresholdNotGoverned(uint16 got, uint16 governed);
    error CannotRetire(uint64 epoch, uint8 why); // chain::evm::CANNOT_RETIRE, from 1
    error NoEpoch(uint64 epoch);
    error ContractKeyPublished(uint64 epoch);
    error NoContractKey(uint64 epoch);
    error NotEndorsed(uint16 have, uint16 need);
    error BadEndorsement(uint16 index);
    error BootstrapOver();
    error TcbNotAccepted(uint8 status);
    error EvidenceExpired(int64 age, uint64 max);
    error SupersededKey(uint64 epoch, uint64 newest);
    error StateRefused(uint8 why); // 1 past the commands, 2 off the command log, 3 not newer
    error Faulty();

    event WorkerRegistered(bytes identityKey, bytes measurement);
    event MeasurementAdded(bytes measurement, uint8 role);
    event MeasurementRemoved(bytes measurement);
    event GatekeepersChanged(uint16[] indices);
    event RotationLockedEvent(uint64 epoch);
    event MasterKeyPublished(uint64 epoch);
    event PublicKeySetUpdated(uint64 epoch);
    event RotationAborted(uint64 epoch);
    event RoundAbortedEvent(bytes32 roundId);
    event EpochRetired(uint64 epoch);
    event TcbRuleSet(uint16 statusMask, uint64 maxEvidenceAge, uint32 minTcbEvaluationDataNumber);
    event BootstrapApproved(bytes32 digest);
    // The module travels in the event only (logs are cheap, storage is not); the
    // contract keeps its hash. Readers check the code against it.
    event ContractDeployed(bytes32 indexed contractId, bytes32 codeHash, bytes code);
    event ContractKeyPublishedEvent(bytes32 contractId, uint64 epoch);
    // A command as ordered: the sender's account and its transaction nonce are what the
    // envelope binds on this backend.
    event CommandSubmitted(bytes32 indexed contractId, uint64 sequence, uint64 epoch, address sender, bytes ciphertext);
    event Misbehaved(bytes identityKey, uint8 fault);
    event StateCommitted(bytes32 indexed contractId, uint64 count, bytes32 logHead, bytes32 stateRoot, uint64 epoch);
    event Served(bytes32 indexed contractId, bytes identityKey, string endpoint);

    // A confidential contract (see chain/src/types.rs, Contract).
    struct ContractRec {
        address deployer;
        bytes32 codeHash;
        bytes32 salt;
        uint64 deployedAt;
        uint64 commands;
        bool exists;
        bytes32 commandLog; // chain::types::command_log's head
    }

    struct ContractKeyRec {
        bytes encryptionKey;
        bytes signingKey;
        bytes publishedBy;
        uint64 publishedAt;
        uint64 commandsBefore; // the contract's command count when they were published
        bool published;
    }


    address public immutable governance;

    mapping(bytes32 => Worker) private workers;
    bytes[] private allowedList;
    mapping(bytes32 => int64) private allowedAt; // 0: not allowed
    mapping(bytes32 => uint8) private roleOf; // 1 pRuntime, 2 gatekeeper, 3 application
    mapping(bytes32 => uint64) private allowedIn; // the block that allowed it
    Gatekeeper[] private gatekeeperSet;
    uint16 public committeeThreshold; // governance's t for every DKG and reshare
    mapping(uint64 => bool) public retiredEpochs;
    mapping(uint64 => EpochKey) private epochKeys;
    bool private anyEpoch;
    uint64 private latestEpoch;
    bool private locked;
    uint64 private lockedEpoch;
    mapping(bytes32 => bytes32) public publishedRounds; // the outcome members confirmed
    mapping(bytes32 => bool) private abortedRounds;
    mapping(address => bytes32) private workerOf; // account -> keccak(identity key)
    mapping(bytes32 => ContractRec) private contracts;
    mapping(bytes32 => mapping(uint64 => ContractKeyRec)) private contractKeys;
    mapping(bytes32 => uint64[]) private contractEpochs; // ascending: keys are published in epoch order
    // 1 + (count << 64 | epoch) of the newest commitment to a contract's state (0: none):
    // a newer one is past more commands, or as far under newer keys. The commitment
    // itself is its StateCommitted log and its fact.
    mapping(bytes32 => uint256) private committedAfter;
    // Per epoch, the contracts whose state still needs its keys (chain/src/state.rs
    // checkpointed_past, kept as a count: contracts are not enumerable here).
    mapping(uint64 => uint256) private needing;
    mapping(bytes32 => mapping(uint64 => bool)) private pastEpoch;
    mapping(bytes32 => bool) private bootstrapApproved;
    // Per keccak(identity key) of a gatekeeper proven to have broken the protocol:
    // fault << 64 | the reporting block (0: none).
    mapping(bytes32 => uint256) public faultOf;
    // The contract that checks evidence of misbehaviour (Judge, below), created with
    // this one: only it may take a registration away (fault).
    address public judge;
    // The TCB rule (the ledger's TcbRule): bit c of the mask allows status code c.
    uint16 private tcbStatusMask = 2; // UpToDate
    uint64 private maxEvidenceAge = 7 days;
    uint32 private minTcbEvaluationDataNumber;

    bytes private constant ACCOUNT_TAG = "phalanx/v1/evm-account";
    bytes private constant ROUND_DIGEST = "phalanx/v1/round-digest";
    bytes private constant ROUND_ID = "phalanx/v1/round-id";
    bytes private constant CONTRACT_CODE = "phalanx/v1/contract-code";
    bytes private constant CONTRACT_ID = "phalanx/v1/contract-id";
    bytes private constant CHAIN_GENESIS = "phalanx/v1/chain-genesis";
    bytes private constant ENDORSEMENT = "phalanx/v1/evm-endorsement";
    bytes private constant FACT_SLOT = "phalanx/v1/evm-fact-slot";
    bytes private constant FACT_VALUE = "phalanx/v1/evm-fact-value";
    bytes private constant COMMAND_LOG = "phalanx/v1/command-log";
    bytes private constant EVM_COMMAND = "phalanx/v1/evm-command";
    int64 private constant MAX_SKEW = 300; // seconds an evidence time may lead the block's
    uint256 private constant MAX_CODE = 512 * 1024;
    uint256 private constant MAX_COMMAND = 64 * 1024;

    constructor(address governance_) {
        governance = governance_;
        judge = address(new Judge());
        setFact("gatekeepers", abi.encodePacked(uint16(0), uint16(0)));
        rotationFact();
        tcbRuleFact();
    }

    function tcbRuleFact() private {
        setFact("tcb-rule", abi.encodePacked(tcbStatusMask, maxEvidenceAge, minTcbEvaluationDataNumber));
    }

    // Sets a fact's value (see Facts above).
    function setFact(bytes memory key, bytes memory value) private {
        bytes32 slot = keccak256(abi.encodePacked(FACT_SLOT, key));
        bytes32 h = keccak256(abi.encodePacked(FACT_VALUE, value));
        assembly {
            sstore(slot, h)
        }
    }

    function clearFact(bytes memory key) private {
        bytes32 slot = keccak256(abi.encodePacked(FACT_SLOT, key));
        assembly {
            sstore(slot, 0)
        }
    }

    // A byte string as the codec writes it: u32 length ‖ bytes.
    function lp(bytes memory b) private pure returns (bytes memory) {
        return abi.encodePacked(uint32(b.length), b);
    }

    function rotationFact() private {
        setFact("rotation", locked ? abi.encodePacked(uint8(1), lockedEpoch) : abi.encodePacked(uint8(0)));
    }

    function workerFact(Registration calldata r) private {
        setFact(
            abi.encodePacked("worker/", r.identityKey),
            abi.encodePacked(
                lp(r.hpkeKey), lp(r.measurement), r.attestationHash, uint64(r.evidenceTime), r.quoteHash, r.tcbStatus
            )
        );
    }

    function epochFact(uint64 epoch) private {
        EpochKey storage k = epochKeys[epoch];
        setFact(
            abi.encodePacked("epoch/", epoch),
            abi.encodePacked(
                lp(k.masterPublicKey), k.threshold, lp(k.publicKeySet), k.roundId, uint64(k.publishedAt)
            )
        );
    }

    // This registry's id (chain::evm's Registry::chain_id): contract ids carry it.
    function registryId() private view returns (bytes32) {
        return sha256(abi.encodePacked(CHAIN_GENESIS, "evm", uint64(block.chainid), address(this)));
    }

    function now_() private view returns (int64) {
        return int64(uint64(block.timestamp));
    }

    function checkMeasurement(bytes calldata m) private pure {
        if (m.length == 0 || m.length > 64) revert Malformed(1);
    }

    function isGatekeeper(address a) private view returns (bool) {
        for (uint256 i = 0; i < gatekeeperSet.length; i++) {
            if (workers[keccak256(gatekeeperSet[i].identityKey)].account == a) return true;
        }
        return false;
    }

    function onlyGovernance() private view {
        if (msg.sender != governance) revert NotGovernance();
    }

    function onlyGovernanceOrGatekeeper() private view {
        if (msg.sender != governance && !isGatekeeper(msg.sender)) revert NotGovernanceOrGatekeeper();
    }

    // Proof of possession: the identity key signed the sender's account on this
    // contract and chain.
    function checkPossession(bytes calldata identityKey, bytes calldata identityPoint, bytes calldata proof)
        private
        view
    {
        if (identityPoint.length != 64 || proof.length != 64) revert NotSelf();
        bytes32 x = bytes32(identityPoint[0:32]);
        bytes32 y = bytes32(identityPoint[32:64]);
        if (!P256.samePoint(identityKey, x, y)) revert NotSelf();
        bytes32 h = sha256(abi.encodePacked(ACCOUNT_TAG, block.chainid, address(this), msg.sender));
        if (!P256.p256Verify(h, bytes32(proof[0:32]), bytes32(proof[32:64]), x, y)) revert NotSelf();
    }

    // What endorsers sign (chain::endorse::digest, byte for byte).
    function endorsementDigest(Registration calldata r) private view returns (bytes32) {
        return sha256(
            abi.encodePacked(
                ENDORSEMENT,
                registryId(),
                sha256(r.identityKey),
                sha256(r.hpkeKey),
                sha256(r.measurement),
                r.attestationHash,
                r.quoteHash,
                r.tcbStatus,
                r.evidenceTime
            )
        );
    }

    // Whether governance approves registrations: before any set exists (bootstrap), and
    // while fewer than the threshold of members are in standing (recovery: otherwise a
    // long outage would leave nobody able to endorse, for good).
    function approvalsOpen() private view returns (bool) {
        uint256 standing = 0;
        for (uint256 i = 0; i < gatekeeperSet.length; i++) {
            if (workerRole(workers[keccak256(gatekeeperSet[i].identityKey)]) == 2) standing++;
        }
        return gatekeeperSet.length == 0 || standing < committeeThreshold;
    }

    // At least the committee's threshold of distinct gatekeepers in standing signed
    // `digest`; while approvals are open, governance approved it (used once).
    function checkEndorsed(bytes32 digest, Endorsement[] calldata ends) private {
        if (approvalsOpen()) {
            if (!bootstrapApproved[digest]) revert NotEndorsed(0, 1);
            delete bootstrapApproved[digest];
            return;
        }
        uint16 have = 0;
        for (uint256 k = 0; k < ends.length; k++) {
            for (uint256 j = 0; j < k; j++) {
                if (ends[j].index == ends[k].index) revert BadEndorsement(ends[k].index);
            }
            Gatekeeper storage g = memberAt(ends[k].index);
            if (
                workerRole(workers[keccak256(g.identityKey)]) != 2 || !P256.samePoint(g.identityKey, ends[k].x, ends[k].y)
                    || !P256.p256Verify(digest, ends[k].r, ends[k].s, ends[k].x, ends[k].y)
            ) revert BadEndorsement(ends[k].index);
            have++;
        }
        if (have < committeeThreshold) revert NotEndorsed(have, committeeThreshold);
    }

    function memberAt(uint16 index) private view returns (Gatekeeper storage) {
        for (uint256 i = 0; i < gatekeeperSet.length; i++) {
            if (gatekeeperSet[i].index == index) return gatekeeperSet[i];
        }
        revert BadEndorsement(index);
    }

    // The evidence is of a status the rule accepts and younger than its lifetime.
    function checkEvidence(Registration calldata r) private view {
        if ((tcbStatusMask >> r.tcbStatus) & 1 == 0) revert TcbNotAccepted(r.tcbStatus);
        // A time before 1970 reads as no time (chain::facts::read_worker).
        if (r.evidenceTime <= 0) revert Malformed(9);
        if (r.evidenceTime > now_() + MAX_SKEW) revert Malformed(9);
        int64 age = now_() - r.evidenceTime;
        if (age > int64(maxEvidenceAge)) revert EvidenceExpired(age, maxEvidenceAge);
    }

    function registerWorker(
        Registration calldata r,
        bytes calldata identityPoint,
        bytes calldata proof,
        Endorsement[] calldata ends
    ) external {
        bytes32 id = keccak256(r.identityKey);
        Worker storage w = workers[id];
        if (w.account != address(0) && w.account != msg.sender) revert NotSelf();
        if (faultOf[id] != 0) revert Faulty();
        if (!P256.compressedKey(r.identityKey) || r.hpkeKey.length > 512) revert Malformed(10);
        checkPossession(r.identityKey, identityPoint, proof);
        checkMeasurement(r.measurement);
        if (allowedAt[keccak256(r.measurement)] == 0) revert MeasurementNotAllowed(r.measurement);
        checkEvidence(r);
        checkEndorsed(endorsementDigest(r), ends);
        w.identityKey = r.identityKey;
        w.hpkeKey = r.hpkeKey;
        w.measurement = r.measurement;
        w.attestationHash = r.attestationHash;
        w.registeredAt = r.evidenceTime;
        w.account = msg.sender;
        w.quoteHash = r.quoteHash;
        w.tcbStatus = r.tcbStatus;
        workerOf[msg.sender] = id;
        workerFact(r);
        emit WorkerRegistered(r.identityKey, r.measurement);
    }

    // Governance vouches for one registration while approvals are open (bootstrap or
    // recovery, see approvalsOpen).
    function approveBootstrap(bytes32 digest) external {
        onlyGovernance();
        if (!approvalsOpen()) revert BootstrapOver();
        bootstrapApproved[digest] = true;
        emit BootstrapApproved(digest);
    }

    function setTcbRule(uint16 statusMask, uint64 maxAge, uint32 minEvaluationDataNumber) external {
        onlyGovernance();
        // codes 1..=9 (chain::types::STATUSES); 7 is Revoked, never accepted
        if (statusMask == 0 || statusMask & ~uint16(0x3fe) != 0 || statusMask & (1 << 7) != 0) {
            revert Malformed(8);
        }
        if (maxAge < 1 days || maxAge > 365 days) revert Malformed(8);
        tcbStatusMask = statusMask;
        maxEvidenceAge = maxAge;
        minTcbEvaluationDataNumber = minEvaluationDataNumber;
        tcbRuleFact();
        emit TcbRuleSet(statusMask, maxAge, minEvaluationDataNumber);
    }

    function tcbRule() external view returns (uint16 statusMask, uint64 maxAge, uint32 minEvaluationDataNumber) {
        return (tcbStatusMask, maxEvidenceAge, minTcbEvaluationDataNumber);
    }

    function addMeasurement(bytes calldata m, uint8 role) external {
        onlyGovernance();
        checkMeasurement(m);
        if (role == 0 || role > 3) revert Malformed(7);
        bytes32 h = keccak256(m);
        if (allowedAt[h] != 0) revert MeasurementState(m, 1);
        allowedAt[h] = now_();
        roleOf[h] = role;
        allowedIn[h] = uint64(block.number);
        allowedList.push(m);
        setFact(abi.encodePacked("allowed/", m), abi.encodePacked(role, uint64(now_()), uint64(block.number)));
        emit MeasurementAdded(m, role);
    }

    // The role of a registered worker's measurement while it is allowed and its evidence
    // is younger than the rule's lifetime (0: none).
    function workerRole(Worker storage w) private view returns (uint8) {
        if (w.account == address(0)) return 0;
        if (now_() - w.registeredAt > int64(maxEvidenceAge)) return 0;
        bytes32 h = keccak256(w.measurement);
        return allowedAt[h] == 0 ? 0 : roleOf[h];
    }

    function removeMeasurement(bytes calldata m) external {
        onlyGovernance();
        bytes32 h = keccak256(m);
        if (allowedAt[h] == 0) revert MeasurementState(m, 2);
        allowedAt[h] = 0;
        roleOf[h] = 0;
        allowedIn[h] = 0;
        clearFact(abi.encodePacked("allowed/", m));
        for (uint256 i = 0; i < allowedList.length; i++) {
            if (keccak256(allowedList[i]) == h) {
                allowedList[i] = allowedList[allowedList.length - 1];
                allowedList.pop();
                break;
            }
        }
        emit MeasurementRemoved(m);
    }

    // `set` comes sorted by index (chain::evm sorts it), so a repeated index shows as
    // one not above its predecessor.
    function setGatekeepers(Gatekeeper[] calldata set, uint16 threshold) external {
        onlyGovernance();
        if (set.length == 0) revert BadGatekeeperSet(1);
        uint16[] memory indices = new uint16[](set.length);
        for (uint256 i = 0; i < set.length; i++) {
            if (set[i].index == 0) revert BadGatekeeperSet(2);
            if (i > 0 && set[i].index <= set[i - 1].index) revert BadGatekeeperSet(3);
            for (uint256 j = 0; j < i; j++) {
                if (keccak256(set[i].identityKey) == keccak256(set[j].identityKey)) {
                    revert BadGatekeeperSet(3);
                }
            }
            indices[i] = set[i].index;
        }
        if (threshold == 0 || threshold > set.length) revert BadGatekeeperSet(4);
        for (uint256 i = 0; i < set.length; i++) {
            if (bytes(set[i].url).length > 2048 || bytes(set[i].peerUrl).length > 2048) {
                revert BadGatekeeperSet(5);
            }
        }
        for (uint256 i = 0; i < set.length; i++) {
            if (workers[keccak256(set[i].identityKey)].account == address(0)) {
                revert GatekeeperNotWorker(set[i].identityKey);
            }
        }
        for (uint256 i = 0; i < set.length; i++) {
            uint8 have = workerRole(workers[keccak256(set[i].identityKey)]);
            if (have != 2) revert WrongRole(set[i].identityKey, 2, have);
        }
        delete gatekeeperSet;
        committeeThreshold = threshold;
        bytes memory fact = abi.encodePacked(threshold, uint16(set.length));
        for (uint256 i = 0; i < set.length; i++) {
            gatekeeperSet.push(set[i]);
            fact = bytes.concat(
                fact, abi.encodePacked(set[i].index), lp(set[i].identityKey), lp(bytes(set[i].url)), lp(bytes(set[i].peerUrl))
            );
        }
        setFact("gatekeepers", fact);
        emit GatekeepersChanged(indices);
    }

    function nextEpoch() private view returns (uint64) {
        return anyEpoch ? latestEpoch + 1 : 0;
    }

    function lockRotation(uint64 epoch) external {
        onlyGovernance();
        if (locked) revert RotationLocked(lockedEpoch);
        if (epoch != nextEpoch()) revert EpochNotNext(epoch, nextEpoch());
        locked = true;
        lockedEpoch = epoch;
        rotationFact();
        emit RotationLockedEvent(epoch);
    }

    // Big-endian unsigned integer of `n` bytes at `at`, or Malformed(what).
    function readUint(bytes calldata b, uint256 at, uint256 n, uint8 what)
        private
        pure
        returns (uint256 v)
    {
        if (at + n > b.length) revert Malformed(what);
        for (uint256 i = 0; i < n; i++) {
            v = (v << 8) | uint8(b[at + i]);
        }
    }

    // keyvault::round::RoundSpec::encode: nonce(16) ‖ kind ‖ ... ‖ participants.
    function parseSpec(bytes calldata spec) private pure returns (Spec memory p) {
        uint8 what = 2; // round spec
        p.kind = uint8(readUint(spec, 16, 1, what));
        p.epoch = uint64(readUint(spec, 17, 8, what));
        if (p.kind == 1) {
            p.threshold = uint16(readUint(spec, 25, 2, what));
            p.participantsAt = 27;
        } else if (p.kind == 2) {
            p.participantsAt = 25;
        } else if (p.kind == 3) {
            uint256 dealers = readUint(spec, 25, 2, what);
            uint256 at = 27 + 2 * dealers;
            p.threshold = uint16(readUint(spec, at, 2, what));
            p.participantsAt = at + 2;
        } else {
            revert Malformed(what);
        }
    }

    // The participants are the gatekeeper set (index, identity key, peer URL, in
    // order); returns their points (x, y) from the spec for signature checks.
    function checkCommittee(bytes calldata spec, uint256 at)
        private
        view
        returns (bytes32[] memory xs, bytes32[] memory ys)
    {
        uint8 what = 2; // round spec
        uint256 n = readUint(spec, at, 2, what);
        at += 2;
        if (n != gatekeeperSet.length) revert CommitteeMismatch();
        xs = new bytes32[](n);
        ys = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            Gatekeeper storage g = gatekeeperSet[i];
            if (readUint(spec, at, 2, what) != g.index) revert CommitteeMismatch();
            uint256 keyLen = readUint(spec, at + 2, 4, what);
            at += 6;
            if (keyLen != 65 || readUint(spec, at, 1, what) != 4 || at + 65 > spec.length) revert Malformed(what);
            xs[i] = bytes32(spec[at + 1:at + 33]);
            ys[i] = bytes32(spec[at + 33:at + 65]);
            if (!P256.samePoint(g.identityKey, xs[i], ys[i])) revert CommitteeMismatch();
            at += 65;
            uint256 urlLen = readUint(spec, at, 4, what);
            at += 4;
            if (at + urlLen > spec.length) revert Malformed(what);
            if (keccak256(spec[at:at + urlLen]) != keccak256(bytes(g.peerUrl))) revert CommitteeMismatch();
            at += urlLen;
        }
        if (at != spec.length) revert Malformed(what);
    }

    // keyvault::wire::public_set_bytes: t ‖ t × (len ‖ point) ‖ n ‖ n × index.
    // Returns t, the master public key and where the member list starts.
    function parseSet(bytes calldata set) private pure returns (uint16 t, bytes memory mpk, uint256 membersAt) {
        uint8 what = 3; // public key set
        t = uint16(readUint(set, 0, 2, what));
        uint256 at = 2;
        for (uint256 i = 0; i < t; i++) {
            uint256 len = readUint(set, at, 1, what);
            if (at + 1 + len > set.length) revert Malformed(what);
            if (i == 0) {
                if (len != 33) revert Malformed(what);
                mpk = set[at + 1:at + 34];
            }
            at += 1 + len;
        }
        uint256 n = readUint(set, at, 2, what);
        if (t == 0 || t > n || at + 2 + 2 * n != set.length) revert Malformed(what);
        membersAt = at;
    }

    // The set's members are the gatekeeper indices, in order.
    function checkMembers(bytes calldata set, uint256 at) private view {
        uint8 what = 3; // public key set
        if (readUint(set, at, 2, what) != gatekeeperSet.length) revert Malformed(what);
        for (uint256 i = 0; i < gatekeeperSet.length; i++) {
            if (readUint(set, at + 2 + 2 * i, 2, what) != gatekeeperSet[i].index) revert Malformed(what);
        }
    }

    // Every participant's confirmation (keyvault::round::confirmation_bytes) of the
    // round's digest.
    function checkConfirmations(
        bytes32 roundId,
        bytes calldata set,
        bytes calldata signatures,
        bytes32[] memory xs,
        bytes32[] memory ys
    ) private view returns (bytes32 digest) {
        if (signatures.length != 64 * xs.length) revert Malformed(4);
        digest = sha256(abi.encodePacked(ROUND_DIGEST, roundId, set));
        for (uint256 i = 0; i < xs.length; i++) {
            uint16 index = gatekeeperSet[i].index;
            bytes32 r = bytes32(signatures[64 * i:64 * i + 32]);
            bytes32 sv = bytes32(signatures[64 * i + 32:64 * i + 64]);
            if (!P256.p256Verify(Round.confirmationHash(roundId, index, digest), r, sv, xs[i], ys[i])) {
                revert MissingConfirmation(index);
            }
        }
    }

    // The accused loses its registration for good; its fact records the fault.
    function fault(bytes calldata key, uint8 code) external {
        if (msg.sender != judge) revert NotSelf();
        bytes32 k = keccak256(key);
        faultOf[k] = (uint256(code) << 64) | block.number;
        // Its record goes out of sight (no account: not found, no standing); clearing its
        // byte strings would cost more code than the contract has room for.
        address account = workers[k].account;
        if (workerOf[account] == k) delete workerOf[account]; // (not if it moved on to another key)
        workers[k].account = address(0);
        clearFact(abi.encodePacked("worker/", key));
        setFact(abi.encodePacked("fault/", key), abi.encodePacked(code, uint64(block.number)));
        emit Misbehaved(key, code);
    }

    // The same checks as chain/src/state.rs (State::check_certificate), in the same
    // order, so both backends refuse a bad certificate with the same error.
    function publishMasterKey(bytes calldata spec, bytes calldata set, bytes calldata signatures) external {
        onlyGovernanceOrGatekeeper();
        Spec memory p = parseSpec(spec);
        (uint16 t, bytes memory mpk, uint256 membersAt) = parseSet(set);
        bytes32 roundId = sha256(abi.encodePacked(ROUND_ID, spec));
        if (publishedRounds[roundId] != 0) revert RoundAlreadyPublished();
        if (abortedRounds[roundId]) revert RoundAborted();
        if (p.kind == 1) {
            if (!locked || lockedEpoch != p.epoch) revert NotLocked(p.epoch);
        } else {
            EpochKey storage current = epochKeys[p.epoch];
            if (!current.published) revert EpochMismatch(1);
            if (keccak256(current.masterPublicKey) != keccak256(mpk)) {
                revert EpochMismatch(2);
            }
            if (p.kind == 2) p.threshold = current.threshold; // a refresh keeps t
        }
        // A DKG or reshare produces governance's threshold, nothing an admin chose.
        if (p.kind != 2 && p.threshold != committeeThreshold) {
            revert ThresholdNotGoverned(p.threshold, committeeThreshold);
        }
        if (retiredEpochs[p.epoch]) revert EpochMismatch(3);
        (bytes32[] memory xs, bytes32[] memory ys) = checkCommittee(spec, p.participantsAt);
        checkMembers(set, membersAt);
        if (t != p.threshold) revert Malformed(3);
        bytes32 digest = checkConfirmations(roundId, set, signatures, xs, ys);
        bool dkg = !epochKeys[p.epoch].published;
        epochKeys[p.epoch] = EpochKey(mpk, t, set, roundId, now_(), true);
        publishedRounds[roundId] = digest;
        epochFact(p.epoch);
        if (dkg) {
            anyEpoch = true;
            latestEpoch = p.epoch;
            locked = false;
            rotationFact();
            emit MasterKeyPublished(p.epoch);
        } else {
            emit PublicKeySetUpdated(p.epoch);
        }
    }

    // Governance retires a published epoch other than the newest (TDX workers seal their
    // identities under the newest), once no contract's state needs it.
    function retireEpoch(uint64 epoch) external {
        onlyGovernance();
        if (!epochKeys[epoch].published) revert CannotRetire(epoch, 1);
        if (retiredEpochs[epoch]) revert CannotRetire(epoch, 2);
        if (epoch == latestEpoch) revert CannotRetire(epoch, 3);
        if (needing[epoch] != 0) revert CannotRetire(epoch, 4);
        retiredEpochs[epoch] = true;
        setFact(abi.encodePacked("retired/", epoch), hex"01");
        emit EpochRetired(epoch);
    }

    // The registry orders a round's outcome: its certificate or an abort, whichever
    // lands first.
    function abortRound(bytes32 roundId) external {
        onlyGovernanceOrGatekeeper();
        if (publishedRounds[roundId] != 0) revert RoundAlreadyPublished();
        if (abortedRounds[roundId]) revert RoundAborted();
        abortedRounds[roundId] = true;
        emit RoundAbortedEvent(roundId);
    }

    // 0: undecided, 1: committed, 2: aborted.
    function roundDecision(bytes32 roundId) external view returns (uint8) {
        if (publishedRounds[roundId] != 0) return 1;
        if (abortedRounds[roundId]) return 2;
        return 0;
    }

    function abortRotation(uint64 epoch) external {
        onlyGovernance();
        if (!locked || lockedEpoch != epoch) revert NotLocked(epoch);
        locked = false;
        rotationFact();
        emit RotationAborted(epoch);
    }

    function worker(bytes calldata identityKey)
        external
        view
        returns (
            bool found,
            bytes memory hpkeKey,
            bytes memory measurement,
            bytes32 attestationHash,
            int64 registeredAt,
            bytes32 quoteHash,
            uint8 tcbStatus
        )
    {
        Worker storage w = workers[keccak256(identityKey)];
        return (
            w.account != address(0),
            w.hpkeKey,
            w.measurement,
            w.attestationHash,
            w.registeredAt,
            w.quoteHash,
            w.tcbStatus
        );
    }

    function allowedMeasurements()
        external
        view
        returns (bytes[] memory measurements, int64[] memory addedAt, uint8[] memory roles, uint64[] memory addedIn)
    {
        addedAt = new int64[](allowedList.length);
        roles = new uint8[](allowedList.length);
        addedIn = new uint64[](allowedList.length);
        for (uint256 i = 0; i < allowedList.length; i++) {
            bytes32 h = keccak256(allowedList[i]);
            addedAt[i] = allowedAt[h];
            roles[i] = roleOf[h];
            addedIn[i] = allowedIn[h];
        }
        return (allowedList, addedAt, roles, addedIn);
    }

    function gatekeepers() external view returns (Gatekeeper[] memory) {
        return gatekeeperSet;
    }

    function masterKey(uint64 epoch)
        external
        view
        returns (
            bool found,
            bytes memory masterPublicKey,
            uint16 threshold,
            bytes memory publicKeySet,
            bytes32 roundId,
            int64 publishedAt
        )
    {
        EpochKey storage k = epochKeys[epoch];
        return (k.published, k.masterPublicKey, k.threshold, k.publicKeySet, k.roundId, k.publishedAt);
    }

    function rotation() external view returns (bool isLocked, uint64 epoch) {
        return (locked, lockedEpoch);
    }

    // Confidential contracts: the same rules as chain/src/state.rs, in the same order.
    // The deployer in the id is the 20-byte account.
    function deployContract(bytes calldata code, bytes32 salt) external returns (bytes32 id) {
        if (code.length == 0 || code.length > MAX_CODE) revert Malformed(5);
        bytes32 codeHash = sha256(abi.encodePacked(CONTRACT_CODE, code));
        id = sha256(abi.encodePacked(CONTRACT_ID, registryId(), uint32(20), msg.sender, codeHash, salt));
        if (contracts[id].exists) revert ContractExists(id);
        contracts[id] = ContractRec(msg.sender, codeHash, salt, uint64(block.number), 0, true, bytes32(0));
        setFact(
            abi.encodePacked("contract/", id),
            abi.encodePacked(uint32(20), msg.sender, codeHash, salt, uint64(block.number))
        );
        setFact(abi.encodePacked("commands/", id), abi.encodePacked(uint64(0), bytes32(0)));
        emit ContractDeployed(id, codeHash, code);
    }

    function publishContractKey(bytes32 contractId, uint64 epoch, bytes calldata encryptionKey, bytes calldata signingKey)
        external
    {
        Worker storage w = onlyRuntime();
        if (!epochKeys[epoch].published || retiredEpochs[epoch]) revert NoEpoch(epoch);
        if (encryptionKey.length != 65 || encryptionKey[0] != 0x04 || !P256.compressedKey(signingKey)) {
            revert Malformed(10);
        }
        ContractRec storage c = contracts[contractId];
        if (!c.exists) revert NoContract(contractId);
        if (contractKeys[contractId][epoch].published) revert ContractKeyPublished(epoch);
        uint64[] storage es = contractEpochs[contractId];
        if (es.length > 0 && epoch < es[es.length - 1]) revert SupersededKey(epoch, es[es.length - 1]);
        contractKeys[contractId][epoch] =
            ContractKeyRec(encryptionKey, signingKey, w.identityKey, uint64(block.number), c.commands, true);
        es.push(epoch);
        needing[epoch] += 1;
        setFact(
            abi.encodePacked("contract-key/", contractId, epoch),
            abi.encodePacked(lp(encryptionKey), lp(signingKey), lp(w.identityKey), uint64(block.number), c.commands)
        );
        emit ContractKeyPublishedEvent(contractId, epoch);
    }

    // A pRuntime announces where it serves a contract (chain::types::Tx::Serve): only
    // where users knock; they seal to the worker's keys as listed here. Kept in the log.
    function serve(bytes32 contractId, string calldata endpoint) external {
        Worker storage w = onlyRuntime();
        if (!contracts[contractId].exists) revert NoContract(contractId);
        bytes calldata e = bytes(endpoint);
        bool web = (e.length > 7 && bytes7(e[:7]) == "http://") || (e.length > 8 && bytes8(e[:8]) == "https://");
        if (!web || e.length > 256) revert Malformed(11);
        emit Served(contractId, w.identityKey, endpoint);
    }

    function command(bytes32 contractId, uint64 epoch, bytes calldata ciphertext) external {
        if (ciphertext.length == 0 || ciphertext.length > MAX_COMMAND) revert Malformed(6);
        ContractRec storage c = contracts[contractId];
        if (!c.exists) revert NoContract(contractId);
        newestKeys(contractId, epoch);
        uint64 sequence = c.commands;
        bytes32 entry = sha256(abi.encodePacked(EVM_COMMAND, contractId, epoch, msg.sender, sequence, ciphertext));
        c.commandLog = sha256(abi.encodePacked(COMMAND_LOG, c.commandLog, uint64(block.number), now_(), entry));
        c.commands = sequence + 1;
        setFact(abi.encodePacked("commands/", contractId), abi.encodePacked(c.commands, c.commandLog));
        emit CommandSubmitted(contractId, sequence, epoch, msg.sender, ciphertext);
    }

    // The sender's registration, which must be a pRuntime's in standing.
    function onlyRuntime() private view returns (Worker storage w) {
        w = workers[workerOf[msg.sender]];
        uint8 have = w.account == msg.sender ? workerRole(w) : 0;
        if (have != 1) revert WrongRole(w.identityKey, 1, have);
    }

    // The contract's newest keys are of `epoch` (commands are sealed to them, checkpoints
    // under them).
    function newestKeys(bytes32 contractId, uint64 epoch) private view {
        if (!contractKeys[contractId][epoch].published) revert NoContractKey(epoch);
        uint64[] storage es = contractEpochs[contractId];
        uint64 newest = es[es.length - 1];
        if (epoch != newest) revert SupersededKey(epoch, newest);
    }

    // A registered pRuntime commits to a contract's state after `count` commands, sealed
    // under its newest keys; each commitment newer than the last. The epochs it takes the
    // contract past no longer need to be kept for it.
    function commitState(bytes32 contractId, uint64 count, bytes32 logHead, bytes32 stateRoot, uint64 epoch)
        external
    {
        onlyRuntime();
        ContractRec storage c = contracts[contractId];
        if (!c.exists) revert NoContract(contractId);
        newestKeys(contractId, epoch);
        if (count > c.commands) revert StateRefused(1);
        if (count == c.commands && logHead != c.commandLog) revert StateRefused(2);
        uint256 order = (uint256(count) << 64 | epoch) + 1;
        if (committedAfter[contractId] >= order) revert StateRefused(3);
        committedAfter[contractId] = order;
        uint64[] storage es = contractEpochs[contractId];
        for (uint256 i = 0; i + 1 < es.length; i++) {
            uint64 e = es[i];
            if (!pastEpoch[contractId][e] && count >= contractKeys[contractId][es[i + 1]].commandsBefore) {
                pastEpoch[contractId][e] = true;
                needing[e] -= 1;
            }
        }
        setFact(
            abi.encodePacked("state/", contractId),
            abi.encodePacked(count, logHead, stateRoot, epoch, uint64(block.number))
        );
        emit StateCommitted(contractId, count, logHead, stateRoot, epoch);
    }

    function contractInfo(bytes32 contractId)
        external
        view
        returns (
            bool found,
            address deployer,
            bytes32 codeHash,
            bytes32 salt,
            uint64 deployedAt,
            uint64 commands,
            bytes32 commandLog
        )
    {
        ContractRec storage c = contracts[contractId];
        return (c.exists, c.deployer, c.codeHash, c.salt, c.deployedAt, c.commands, c.commandLog);
    }

    function contractKeyEpochs(bytes32 contractId) external view returns (uint64[] memory) {
        return contractEpochs[contractId];
    }

    function contractKey(bytes32 contractId, uint64 epoch) external view returns (ContractKeyRec memory) {
        return contractKeys[contractId][epoch];
    }
}

// Checks evidence of misbehaviour for the Registry that created it, as
// chain/src/state.rs check_misbehaviour does, in the same order, and has the registry
// take the accused's registration away. Anyone may report. A contract of its own: the
// registry has no room left under EIP-170, and new kinds of evidence land here.
contract Judge {
    Registry private immutable registry;

    error NotMisbehaviour(uint8 why); // chain/src/state.rs NOT_MISBEHAVIOUR, from 1

    bytes private constant TREE_HEAD = "phalanx/v1/tree-head";

    constructor() {
        registry = Registry(msg.sender);
    }

    // The accused, named by its key and point.
    function accused(bytes calldata key, bytes calldata point) private view returns (bytes32 x, bytes32 y) {
        if (registry.faultOf(keccak256(key)) != 0) revert NotMisbehaviour(1);
        if (point.length != 64 || !P256.compressedKey(key)) revert NotMisbehaviour(2);
        x = bytes32(point[0:32]);
        y = bytes32(point[32:64]);
        if (!P256.samePoint(key, x, y)) revert NotMisbehaviour(2);
    }

    // Fault 1: a confirmation of an outcome other than the one published for the round
    // (whose certificate holds the accused's confirmation of that one).
    function reportConfirmation(
        bytes calldata key,
        bytes calldata point,
        bytes32 roundId,
        uint16 index,
        bytes32 digest,
        bytes32 r,
        bytes32 sv
    ) external {
        (bytes32 x, bytes32 y) = accused(key, point);
        bytes32 outcome = registry.publishedRounds(roundId);
        if (outcome == 0) revert NotMisbehaviour(3);
        if (outcome == digest) revert NotMisbehaviour(4);
        if (index == 0 || !P256.p256Verify(Round.confirmationHash(roundId, index, digest), r, sv, x, y)) {
            revert NotMisbehaviour(5);
        }
        registry.fault(key, 1);
    }

    // Fault 2: two heads of the accused's release log (keyvault::translog::TreeHead) of
    // one size with different roots; sigs are r ‖ s of each.
    function reportForkedLog(
        bytes calldata key,
        bytes calldata point,
        uint64 size,
        bytes32[2] calldata roots,
        int64[2] calldata times,
        bytes32[4] calldata sigs
    ) external {
        (bytes32 x, bytes32 y) = accused(key, point);
        if (roots[0] == roots[1]) revert NotMisbehaviour(6);
        bytes32 logId = sha256(abi.encodePacked(uint8(4), x, y));
        for (uint256 i = 0; i < 2; i++) {
            bytes32 h = sha256(abi.encodePacked(TREE_HEAD, logId, size, roots[i], times[i]));
            if (!P256.p256Verify(h, sigs[2 * i], sigs[2 * i + 1], x, y)) revert NotMisbehaviour(5);
        }
        registry.fault(key, 2);
    }

}
