// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

// The registry's view of a contract's keys (Registry.contractKey).
interface IContractKeys {
    struct ContractKeyRec {
        bytes encryptionKey;
        bytes signingKey;
        bytes publishedBy;
        uint64 publishedAt;
        uint64 commandsBefore;
        bool published;
    }

    function contractKey(bytes32 contractId, uint64 epoch) external view returns (ContractKeyRec memory);

    function retiredEpochs(uint64 epoch) external view returns (bool);
}

// Settles a sealed-bid auction that ran as a Phalanx confidential contract
// (pruntime/guest/contracts/auction): the result counts only with the contract's own
// signature, by its key of an epoch as the registry lists it (and has not retired) — a
// key the registry took only from an attested pRuntime. No oracle, no relayer to trust:
// anyone may submit.
//
// What the contract signs (its query 4): SHA-256("phalanx/v1/contract-signature" ‖
// contract id ‖ "auction-result" ‖ winner ‖ price as u64 big-endian), ECDSA P-256,
// checked with the P256VERIFY precompile (RIP-7212, address 0x100).
contract AuctionSettlement {
    IContractKeys public immutable registry;
    bytes32 public immutable auction;

    bool public settled;
    bytes32 public winner;
    uint64 public price;

    event Settled(bytes32 winner, uint64 price, uint64 epoch);

    error AlreadySettled();
    error NoSuchKey(uint64 epoch);
    error NotTheKey();
    error BadSignature();

    constructor(IContractKeys registry_, bytes32 auction_) {
        registry = registry_;
        auction = auction_;
    }

    // `x`, `y`: the signing key of `epoch` as a point (the registry lists it
    // compressed; decompressing on chain would cost more than checking the point).
    function settle(bytes32 winner_, uint64 price_, uint64 epoch, bytes32 r, bytes32 s, bytes32 x, bytes32 y)
        external
    {
        if (settled) revert AlreadySettled();
        IContractKeys.ContractKeyRec memory k = registry.contractKey(auction, epoch);
        // A retired epoch's keys are the old committee's to forget: none settles.
        if (!k.published || registry.retiredEpochs(epoch)) revert NoSuchKey(epoch);
        if (!samePoint(k.signingKey, x, y)) revert NotTheKey();
        bytes32 h = sha256(abi.encodePacked("phalanx/v1/contract-signature", auction, "auction-result", winner_, price_));
        (bool ok, bytes memory out) = address(0x100).staticcall(abi.encodePacked(h, r, s, x, y));
        if (!ok || out.length != 32 || uint256(bytes32(out)) != 1) revert BadSignature();
        settled = true;
        winner = winner_;
        price = price_;
        emit Settled(winner_, price_, epoch);
    }

    // Whether the compressed key `k` is the point (x, y).
    function samePoint(bytes memory k, bytes32 x, bytes32 y) private pure returns (bool) {
        if (k.length != 33) return false;
        bytes32 kx;
        assembly {
            kx := mload(add(k, 33))
        }
        return kx == x && uint8(k[0]) == 2 + uint8(uint256(y) & 1);
    }
}
