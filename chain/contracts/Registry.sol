// SPDX-License-Identifier: Apache-2.0
// Phalanx's registry on an EVM chain: the same rules as the embedded ledger
// (chain/src/state.rs). Compiled with solcjs (npm `solc`, version pinned in .ci/run)
// into Registry.json, which is committed; CI recompiles it and fails on drift.
//
// Accounts differ from the embedded ledger: a worker's account is the Ethereum account
// that first registered its identity key (the key itself is P-256, which the EVM does
// not verify); only that account may refresh the registration. Replays are prevented by
// the chain's own nonces.
pragma solidity 0.8.30;

contract Registry {
    struct Worker {
        bytes identityKey;
        bytes hpkeKey;
        bytes measurement;
        bytes32 attestationHash;
        int64 registeredAt;
        address account;
    }

    struct Gatekeeper {
        uint16 index;
        bytes identityKey;
        string url;
        string peerUrl;
    }

    struct EpochKey {
        bytes masterPublicKey;
        int64 publishedAt;
        bool published;
    }

    error NotGovernance();
    error NotGovernanceOrGatekeeper();
    error NotSelf();
    error MeasurementNotAllowed(bytes measurement);
    error GatekeeperNotWorker(bytes identityKey);
    error BadGatekeeperSet(string what);
    error RotationLocked(uint64 locked);
    error NotLocked(uint64 epoch);
    error EpochNotIncreasing(uint64 epoch, uint64 latest);
    error Malformed(string what);
    error MeasurementState(bytes measurement, string what);

    event WorkerRegistered(bytes identityKey, bytes measurement);
    event MeasurementAdded(bytes measurement);
    event MeasurementRemoved(bytes measurement);
    event GatekeepersChanged(uint16[] indices);
    event RotationLockedEvent(uint64 epoch);
    event MasterKeyPublished(uint64 epoch);
    event RotationAborted(uint64 epoch);

    address public immutable governance;

    mapping(bytes32 => Worker) private workers;
    bytes[] private allowedList;
    mapping(bytes32 => int64) private allowedAt; // 0: not allowed
    Gatekeeper[] private gatekeeperSet;
    mapping(uint64 => EpochKey) private epochKeys;
    bool private anyEpoch;
    uint64 private latestEpoch;
    bool private locked;
    uint64 private lockedEpoch;

    constructor(address governance_) {
        governance = governance_;
    }

    function now_() private view returns (int64) {
        return int64(uint64(block.timestamp));
    }

    function checkMeasurement(bytes calldata m) private pure {
        if (m.length == 0 || m.length > 64) revert Malformed("measurement");
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

    function compressedKey(bytes calldata k) private pure returns (bool) {
        return k.length == 33 && (k[0] == 0x02 || k[0] == 0x03);
    }

    function registerWorker(
        bytes calldata identityKey,
        bytes calldata hpkeKey,
        bytes calldata measurement,
        bytes32 attestationHash
    ) external {
        bytes32 id = keccak256(identityKey);
        Worker storage w = workers[id];
        if (w.account != address(0) && w.account != msg.sender) revert NotSelf();
        if (!compressedKey(identityKey) || hpkeKey.length > 512) revert Malformed("key");
        checkMeasurement(measurement);
        if (allowedAt[keccak256(measurement)] == 0) revert MeasurementNotAllowed(measurement);
        w.identityKey = identityKey;
        w.hpkeKey = hpkeKey;
        w.measurement = measurement;
        w.attestationHash = attestationHash;
        w.registeredAt = now_();
        w.account = msg.sender;
        emit WorkerRegistered(identityKey, measurement);
    }

    function addMeasurement(bytes calldata m) external {
        onlyGovernance();
        checkMeasurement(m);
        bytes32 h = keccak256(m);
        if (allowedAt[h] != 0) revert MeasurementState(m, "is already allowed");
        allowedAt[h] = now_();
        allowedList.push(m);
        emit MeasurementAdded(m);
    }

    function removeMeasurement(bytes calldata m) external {
        onlyGovernance();
        bytes32 h = keccak256(m);
        if (allowedAt[h] == 0) revert MeasurementState(m, "is not allowed");
        allowedAt[h] = 0;
        for (uint256 i = 0; i < allowedList.length; i++) {
            if (keccak256(allowedList[i]) == h) {
                allowedList[i] = allowedList[allowedList.length - 1];
                allowedList.pop();
                break;
            }
        }
        emit MeasurementRemoved(m);
    }

    function setGatekeepers(Gatekeeper[] calldata set) external {
        onlyGovernance();
        if (set.length == 0) revert BadGatekeeperSet("no members");
        uint16[] memory indices = new uint16[](set.length);
        for (uint256 i = 0; i < set.length; i++) {
            for (uint256 j = 0; j < i; j++) {
                if (set[i].index == set[j].index || keccak256(set[i].identityKey) == keccak256(set[j].identityKey)) {
                    revert BadGatekeeperSet("a repeated index or key");
                }
            }
            if (set[i].index == 0) revert BadGatekeeperSet("index 0");
        }
        for (uint256 i = 0; i < set.length; i++) {
            if (workers[keccak256(set[i].identityKey)].account == address(0)) {
                revert GatekeeperNotWorker(set[i].identityKey);
            }
        }
        delete gatekeeperSet;
        // Stored sorted by index (insertion sort; committees are small).
        for (uint256 i = 0; i < set.length; i++) {
            gatekeeperSet.push(set[i]);
            uint256 k = gatekeeperSet.length - 1;
            while (k > 0 && gatekeeperSet[k - 1].index > gatekeeperSet[k].index) {
                Gatekeeper memory t = gatekeeperSet[k - 1];
                gatekeeperSet[k - 1] = gatekeeperSet[k];
                gatekeeperSet[k] = t;
                k--;
            }
        }
        for (uint256 i = 0; i < gatekeeperSet.length; i++) {
            indices[i] = gatekeeperSet[i].index;
        }
        emit GatekeepersChanged(indices);
    }

    function lockRotation(uint64 epoch) external {
        onlyGovernanceOrGatekeeper();
        if (locked) revert RotationLocked(lockedEpoch);
        if (anyEpoch && epoch <= latestEpoch) revert EpochNotIncreasing(epoch, latestEpoch);
        locked = true;
        lockedEpoch = epoch;
        emit RotationLockedEvent(epoch);
    }

    function publishMasterKey(uint64 epoch, bytes calldata mpk) external {
        onlyGovernanceOrGatekeeper();
        if (!locked || lockedEpoch != epoch) revert NotLocked(epoch);
        if (!compressedKey(mpk)) revert Malformed("master public key");
        epochKeys[epoch] = EpochKey(mpk, now_(), true);
        anyEpoch = true;
        latestEpoch = epoch;
        locked = false;
        emit MasterKeyPublished(epoch);
    }

    function abortRotation(uint64 epoch) external {
        onlyGovernanceOrGatekeeper();
        if (!locked || lockedEpoch != epoch) revert NotLocked(epoch);
        locked = false;
        emit RotationAborted(epoch);
    }

    function worker(bytes calldata identityKey)
        external
        view
        returns (bool found, bytes memory hpkeKey, bytes memory measurement, bytes32 attestationHash, int64 registeredAt)
    {
        Worker storage w = workers[keccak256(identityKey)];
        return (w.account != address(0), w.hpkeKey, w.measurement, w.attestationHash, w.registeredAt);
    }

    function allowedMeasurements() external view returns (bytes[] memory measurements, int64[] memory addedAt) {
        addedAt = new int64[](allowedList.length);
        for (uint256 i = 0; i < allowedList.length; i++) {
            addedAt[i] = allowedAt[keccak256(allowedList[i])];
        }
        return (allowedList, addedAt);
    }

    function gatekeepers() external view returns (Gatekeeper[] memory) {
        return gatekeeperSet;
    }

    function masterKey(uint64 epoch) external view returns (bool found, bytes memory masterPublicKey, int64 publishedAt) {
        EpochKey storage k = epochKeys[epoch];
        return (k.published, k.masterPublicKey, k.publishedAt);
    }

    function rotation() external view returns (bool isLocked, uint64 epoch) {
        return (locked, lockedEpoch);
    }
}
