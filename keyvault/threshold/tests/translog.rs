//! The transparency log: every inclusion and consistency proof of small trees verifies,
//! every altered one fails, and signed tree heads bind all their fields. (A proof does
//! not by itself fix the tree size — a root of size 3 is also the root of a size-4 shape
//! whose last subtree is one hash — which is why sizes come from signed tree heads.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use phalanx_threshold::identity::IdentityKey;
use phalanx_threshold::translog::{
    Hash, MerkleLog, TreeHead, empty_root, leaf_hash, verify_consistency, verify_inclusion,
};

fn log_of(n: u32) -> MerkleLog {
    let mut log = MerkleLog::new();
    for i in 0..n {
        log.append(format!("entry {i}").as_bytes());
    }
    log
}

fn flipped(proof: &[Hash], i: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[i][0] ^= 1;
    p
}

#[test]
fn every_inclusion_proof_verifies_and_every_alteration_fails() {
    let log = log_of(33);
    for size in 1..=33u64 {
        let root = log.root_at(size).unwrap();
        for index in 0..size {
            let leaf = log.leaf(index).unwrap();
            let proof = log.inclusion_proof(index, size).unwrap();
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize);
            for i in 0..proof.len() {
                assert!(verify_inclusion(&leaf, index, size, &flipped(&proof, i), &root).is_err());
            }
            let other = if index + 1 < size { index + 1 } else { 0 };
            if other != index {
                assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
            }
            assert!(verify_inclusion(&leaf_hash(b"forged"), index, size, &proof, &root).is_err());
            let mut longer = proof.clone();
            longer.push([7; 32]);
            assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
            if !proof.is_empty() {
                assert!(
                    verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root).is_err()
                );
            }
        }
    }
    assert!(log.inclusion_proof(5, 5).is_err());
    assert!(log.inclusion_proof(0, 34).is_err());
}

#[test]
fn every_consistency_proof_verifies_and_every_alteration_fails() {
    let log = log_of(33);
    for new in 1..=33u64 {
        let new_root = log.root_at(new).unwrap();
        for old in 1..=new {
            let old_root = log.root_at(old).unwrap();
            let proof = log.consistency_proof(old, new).unwrap();
            verify_consistency(old, new, &old_root, &new_root, &proof)
                .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
            for i in 0..proof.len() {
                assert!(
                    verify_consistency(old, new, &old_root, &new_root, &flipped(&proof, i))
                        .is_err(),
                    "{old}->{new} flip {i}"
                );
            }
            if old < new {
                // A rewritten history: the old root of another log.
                let forged = log_of(0).root();
                assert!(verify_consistency(old, new, &forged, &new_root, &proof).is_err());
                assert!(verify_consistency(old, new, &old_root, &old_root, &proof).is_err());
            }
        }
    }
    // The empty tree is a prefix of everything; nothing else is free.
    verify_consistency(0, 5, &empty_root(), &log.root_at(5).unwrap(), &[]).unwrap();
    assert!(
        verify_consistency(
            3,
            5,
            &log.root_at(3).unwrap(),
            &log.root_at(5).unwrap(),
            &[]
        )
        .is_err()
    );
    assert!(log.consistency_proof(0, 3).is_err());
    assert!(log.consistency_proof(4, 3).is_err());
}

#[test]
fn an_edited_entry_breaks_consistency_with_earlier_heads() {
    let honest = log_of(20);
    let mut edited = MerkleLog::new();
    for i in 0..20u32 {
        let e = if i == 7 {
            "entry 7, rewritten".to_owned()
        } else {
            format!("entry {i}")
        };
        edited.append(e.as_bytes());
    }
    let old_root = honest.root_at(10).unwrap();
    let proof = edited.consistency_proof(10, 20).unwrap();
    assert!(verify_consistency(10, 20, &old_root, &edited.root(), &proof).is_err());
}

#[test]
fn large_logs_give_short_proofs() {
    let log = log_of(5000);
    let root = log.root();
    for index in [0u64, 1, 2047, 2048, 4095, 4999] {
        let proof = log.inclusion_proof(index, 5000).unwrap();
        assert!(proof.len() <= 13);
        verify_inclusion(&log.leaf(index).unwrap(), index, 5000, &proof, &root).unwrap();
    }
    let proof = log.consistency_proof(1234, 5000).unwrap();
    verify_consistency(1234, 5000, &log.root_at(1234).unwrap(), &root, &proof).unwrap();
}

#[test]
fn signed_tree_heads_bind_every_field() {
    let key = IdentityKey::generate(&mut rand::rng());
    let other = IdentityKey::generate(&mut rand::rng());
    let log = log_of(9);
    let head = TreeHead {
        log_id: phalanx_threshold::translog::log_id(&key.verifying_key()),
        size: 9,
        root: log.root(),
        timestamp: 1_760_000_000,
    };
    let sth = head.sign(&key);
    assert_eq!(sth.verify(&key.verifying_key()).unwrap(), &head);
    assert!(sth.verify(&other.verifying_key()).is_err());
    for change in 0..4 {
        let mut forged = sth;
        match change {
            0 => forged.head.size = 10,
            1 => forged.head.root[3] ^= 1,
            2 => forged.head.timestamp += 1,
            _ => forged.head.log_id[0] ^= 1,
        }
        assert!(
            forged.verify(&key.verifying_key()).is_err(),
            "change {change}"
        );
    }
}

/// M3: a validly signed head that names another log (what a signing oracle over
/// 100-byte messages, such as a TLS 1.2 ServerKeyExchange under the same key, yields:
/// attacker-chosen bytes where the log id sits) is not a head of this log.
#[test]
fn attack_m3_a_signed_head_of_another_log_id_is_refused() {
    let key = IdentityKey::generate(&mut rand::rng());
    let head = TreeHead {
        log_id: [0x42; 32],
        size: 9,
        root: log_of(9).root(),
        timestamp: 1_760_000_000,
    };
    let sth = head.sign(&key);
    assert!(sth.verify(&key.verifying_key()).is_err());
}

/// The reference vectors of Certificate Transparency's Merkle tree tests (RFC 6962 /
/// RFC 9162 hashing): roots of the first 1..=8 of these leaves.
#[test]
fn roots_match_the_certificate_transparency_vectors() {
    let leaves: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let mut log = MerkleLog::new();
    for (leaf, root) in leaves.iter().zip(roots) {
        log.append(leaf);
        assert_eq!(hex::encode(log.root()), root, "size {}", log.size());
    }
    assert_eq!(
        hex::encode(empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

/// A log cut back to a size is the log of its first entries (a gatekeeper drops a
/// record it could not persist, so it never signs a head over it).
#[test]
fn a_truncated_log_is_the_log_of_its_first_entries() {
    use phalanx_threshold::translog::MerkleLog;
    let mut log = MerkleLog::new();
    let mut earlier = Vec::new();
    for i in 0..13u8 {
        earlier.push(log.clone());
        log.append(&[i]);
    }
    for size in [12u64, 8, 5, 1, 0] {
        let mut cut = log.clone();
        cut.truncate(size);
        assert_eq!(cut, earlier[size as usize]);
        assert_eq!(cut.root(), log.root_at(size).unwrap());
    }
    let mut same = log.clone();
    same.truncate(20);
    assert_eq!(same, log);
}
