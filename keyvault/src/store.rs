//! A gatekeeper's persistent state (feature `node`): rocksdb, with every secret sealed.
//!
//! | table | key | value |
//! |---|---|---|
//! | `epochs` | epoch (u64 BE) | sealed [`EpochState`]: this node's share and the public key set |
//! | `log` | index (u64 BE) | a transparency-log leaf hash |
//! | `meta` | `identity` | the sealed identity key |
//!
//! **Sealing.** Shares and the identity key are encrypted with AES-256-GCM (`ring`)
//! under a [`SealingKey`]: derived from the TEE's sealing key ([`SealingKey::derive`];
//! on SGX bound to the enclave's measurement, under the sim backend a 0600 key file), or
//! for a node outside any TEE a 32-byte key file created with mode 0600. Each value is `nonce (12) ‖ ciphertext ‖ tag`, with a random
//! nonce and the associated data `SEALED_RECORD ‖ table ‖ key`, so a sealed value moved
//! to another slot (say, an old epoch's share into a new epoch) fails to open.
//!
//! **Crash consistency.** Every write is one rocksdb batch, synced before it returns:
//! a node killed at any instant finds each record either old or new, never torn. The
//! log is append-only and [`NodeStore::log`] refuses a gap. The store is *untrusted*
//! beyond that: a value that fails to open or decode is an error naming the slot, never
//! silently skipped. (Overwritten shares stay in rocksdb's files until compaction; a
//! refresh compacts the `epochs` table to erase them.)

use crate::error::Error;
use crate::identity::IdentityKey;
pub use crate::share::EpochState;
use crate::share::KeyShare;
use crate::translog::{Hash, MerkleLog};
use crate::wire::{ReadCurve, Reader, WriteCurve, Writer, get_public_set, put_public_set};
use phalanx_types::Epoch;
use phalanx_types::secret_file;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// Why the store failed. Messages name slots, never contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// rocksdb failed (its message never contains values).
    #[error("storage: {0}")]
    Db(#[from] rocksdb::Error),
    /// The database lacks one of the node's tables.
    #[error("storage: missing table {0}")]
    MissingTable(String),
    /// AES-GCM refused to seal or to make the key (a local fault).
    #[error("sealing failed")]
    Seal,
    /// A sealed value does not open under this node's sealing key (tampered, moved, or
    /// another node's).
    #[error("sealed record {0} does not open")]
    Unseal(String),
    /// A record opened but does not decode.
    #[error("record {0} is malformed")]
    Corrupt(String),
    /// A secret file (the sealing key) could not be made or read.
    #[error(transparent)]
    Secret(#[from] secret_file::SecretFileError),
    /// The system has no randomness (for a key or a nonce).
    #[error("no randomness")]
    NoRandomness,
    /// The log has a hole.
    #[error("transparency log is missing entry {0}")]
    LogGap(u64),
    /// The caller tried to append out of order.
    #[error("log append at {got}, expected {expected}")]
    LogOrder {
        /// Where the caller wrote.
        got: u64,
        /// The next free index.
        expected: u64,
    },
}

/// The key that seals this node's secrets at rest. Never leaves memory unsealed.
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// A key from 32 secret bytes.
    pub fn new(bytes: &[u8; 32]) -> Result<Self, StoreError> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .map(|k| Self(LessSafeKey::new(k)))
            .map_err(|_| StoreError::Seal)
    }

    /// The store's key derived from a TEE's sealing key (HKDF-SHA256, salt the
    /// gatekeeper's sealing tag): bound to the enclave's measurement on SGX.
    pub fn derive(secret: &[u8]) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(Some(crate::tag::SEALED_RECORD), secret)
            .expand(b"gatekeeper store", &mut key[..])
            .map_err(|_| StoreError::Seal)?;
        Self::new(&key)
    }

    /// Loads the key file at `path`, creating it (32 random bytes, mode 0600) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            let mut raw = Zeroizing::new([0u8; 32]);
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), raw.as_mut())
                .map_err(|_| StoreError::NoRandomness)?;
            secret_file::create(path, raw.as_ref())?;
        }
        let raw = secret_file::read(path)?;
        let bytes: &[u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("{} (not a 32-byte key)", path.display())))?;
        Self::new(bytes)
    }

    fn aad(slot: &[u8]) -> Vec<u8> {
        [crate::tag::SEALED_RECORD, slot].concat()
    }

    /// `nonce ‖ AES-256-GCM(plain)` bound to `slot`.
    fn seal(&self, slot: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| StoreError::NoRandomness)?;
        let mut buf = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(slot)),
                &mut buf,
            )
            .map_err(|_| StoreError::Seal)?;
        Ok([&nonce[..], &buf].concat())
    }

    fn open(
        &self,
        slot: &[u8],
        sealed: &[u8],
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let bad = || StoreError::Unseal(name.to_owned());
        let (nonce, ct) = sealed.split_first_chunk::<NONCE_LEN>().ok_or_else(bad)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(Self::aad(slot)),
                buf.as_mut_slice(),
            )
            .map_err(|_| bad())?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

/// `index ‖ secret ‖ public key set` ([`crate::wire`]), sealed by the caller.
fn encode_epoch(st: &EpochState) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::default();
    w.index(st.share.index);
    w.scalar(st.share.secret.expose());
    put_public_set(&mut w, &st.public);
    Zeroizing::new(w.0)
}

fn decode_epoch(b: &[u8]) -> Result<EpochState, Error> {
    let mut r = Reader::new(b, "epoch state");
    let index = r.index("index")?;
    let secret = r.secret("share")?;
    let public = get_public_set(&mut r)?;
    r.finish()?;
    Ok(EpochState {
        share: KeyShare { index, secret },
        public,
    })
}

/// Where a network round stands on this node.
#[derive(Debug, Clone)]
pub enum RoundRecord {
    /// This node computed `state` and confirmed `digest`; it waits for every other
    /// participant's confirmation (or an abort) before installing.
    Prepared {
        /// The round spec's encoding.
        spec: Vec<u8>,
        /// The confirmed digest.
        digest: [u8; 32],
        /// The share and public key set the round produced.
        state: EpochState,
    },
    /// Installed everywhere this node knows of.
    Committed {
        /// The round spec's encoding.
        spec: Vec<u8>,
        /// The digest every participant confirmed.
        digest: [u8; 32],
    },
    /// Given up; this node will never confirm the round.
    Aborted {
        /// Why.
        reason: String,
    },
}

impl RoundRecord {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::default();
        match self {
            Self::Prepared {
                spec,
                digest,
                state,
            } => {
                w.u8(1);
                w.bytes(spec);
                w.raw(digest);
                let st = encode_epoch(state);
                w.bytes(&st);
            }
            Self::Committed { spec, digest } => {
                w.u8(2);
                w.bytes(spec);
                w.raw(digest);
            }
            Self::Aborted { reason } => {
                w.u8(3);
                w.bytes(reason.as_bytes());
            }
        }
        Zeroizing::new(w.0)
    }

    fn decode(b: &[u8]) -> Result<Self, Error> {
        const MAX: usize = 1 << 20;
        let mut r = Reader::new(b, "round record");
        let rec = match r.u8("kind")? {
            1 => Self::Prepared {
                spec: r.bytes("spec", MAX)?.to_vec(),
                digest: r.array("digest")?,
                state: decode_epoch(r.bytes("state", MAX)?)?,
            },
            2 => Self::Committed {
                spec: r.bytes("spec", MAX)?.to_vec(),
                digest: r.array("digest")?,
            },
            3 => Self::Aborted {
                reason: String::from_utf8_lossy(r.bytes("reason", MAX)?).into_owned(),
            },
            _ => return Err(r.invalid("kind").into()),
        };
        r.finish()?;
        Ok(rec)
    }
}

const TABLES: [&str; 4] = ["epochs", "log", "meta", "rounds"];
const IDENTITY: &[u8] = b"identity";

/// The database of one gatekeeper.
pub struct NodeStore {
    db: rocksdb::DB,
    key: SealingKey,
}

impl std::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStore")
            .field("path", &self.db.path())
            .finish()
    }
}

impl NodeStore {
    /// Opens (creating) the database in `dir`, sealing with `key`.
    pub fn open(dir: &Path, key: SealingKey) -> Result<Self, StoreError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        // A crash loses at most a suffix of what was written unsynced (never a record
        // in the middle): the log's group commit relies on it.
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open_cf(&opts, dir, TABLES)?;
        Ok(Self { db, key })
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::MissingTable(name.to_owned()))
    }

    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put_opt(table, key, value, true)
    }

    /// Writes one entry; synced (durable on return) if `sync`, else durable after the
    /// next synced write or [`Self::sync`].
    fn put_opt(&self, table: &str, key: &[u8], value: &[u8], sync: bool) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(table)?, key, value);
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(sync);
        Ok(self.db.write_opt(batch, &opts)?)
    }

    /// Makes every write so far durable (syncs the write-ahead log): one sync for all
    /// the [`Self::append_log_unsynced`] entries before it.
    pub fn sync(&self) -> Result<(), StoreError> {
        Ok(self.db.flush_wal(true)?)
    }

    fn slot(table: &str, key: &[u8]) -> Vec<u8> {
        [table.as_bytes(), b"/", key].concat()
    }

    /// Stores (replacing) the state of `epoch`, synced.
    pub fn put_epoch(&self, epoch: Epoch, state: &EpochState) -> Result<(), StoreError> {
        let k = epoch.0.to_be_bytes();
        let sealed = self
            .key
            .seal(&Self::slot("epochs", &k), &encode_epoch(state))?;
        self.put("epochs", &k, &sealed)
    }

    /// Forgets `epoch` (retirement) and compacts the table so the share leaves the disk.
    pub fn remove_epoch(&self, epoch: Epoch) -> Result<(), StoreError> {
        let cf = self.cf("epochs")?;
        let mut batch = rocksdb::WriteBatch::default();
        batch.delete_cf(cf, epoch.0.to_be_bytes());
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Every epoch this node holds a share of.
    pub fn epochs(&self) -> Result<BTreeMap<Epoch, EpochState>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self
            .db
            .iterator_cf(self.cf("epochs")?, rocksdb::IteratorMode::Start)
        {
            let (k, v) = item?;
            let name = format!("epochs/{}", hex_of(&k));
            let epoch = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt(name.clone()))?,
            );
            let plain = self.key.open(&Self::slot("epochs", &k), &v, &name)?;
            let state = decode_epoch(&plain).map_err(|_| StoreError::Corrupt(name))?;
            out.insert(Epoch(epoch), state);
        }
        Ok(out)
    }

    /// Appends leaf `index` (which must be the next free one), synced.
    pub fn append_log(&self, index: u64, leaf: &Hash) -> Result<(), StoreError> {
        self.append_log_opt(index, leaf, true)
    }

    /// [`Self::append_log`] without the sync: the entry is durable after the next
    /// [`Self::sync`] (or synced write), and may be lost in a crash before it. Entries
    /// are written in order, so a crash loses a suffix of the log, never a record in
    /// its middle.
    pub fn append_log_unsynced(&self, index: u64, leaf: &Hash) -> Result<(), StoreError> {
        self.append_log_opt(index, leaf, false)
    }

    fn append_log_opt(&self, index: u64, leaf: &Hash, sync: bool) -> Result<(), StoreError> {
        let expected = self.log_len()?;
        if index != expected {
            return Err(StoreError::LogOrder {
                got: index,
                expected,
            });
        }
        self.put_opt("log", &index.to_be_bytes(), leaf, sync)
    }

    fn log_len(&self) -> Result<u64, StoreError> {
        let mut it = self
            .db
            .iterator_cf(self.cf("log")?, rocksdb::IteratorMode::End);
        match it.next() {
            None => Ok(0),
            Some(item) => {
                let (k, _) = item?;
                let last = u64::from_be_bytes(
                    k.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("log key".into()))?,
                );
                Ok(last + 1)
            }
        }
    }

    /// The whole log, rebuilt from its leaves (refusing holes).
    pub fn log(&self) -> Result<MerkleLog, StoreError> {
        let mut leaves = Vec::new();
        for (expected, item) in (0u64..).zip(
            self.db
                .iterator_cf(self.cf("log")?, rocksdb::IteratorMode::Start),
        ) {
            let (k, v) = item?;
            let index = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("log key".into()))?,
            );
            if index != expected {
                return Err(StoreError::LogGap(expected));
            }
            let leaf: Hash = v
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("log/{index}")))?;
            leaves.push(leaf);
        }
        Ok(MerkleLog::from_leaf_hashes(leaves))
    }

    /// The node's identity key, generated with `rng` and stored (sealed) on first use.
    pub fn identity<R: rand_core::CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<IdentityKey, StoreError> {
        let slot = Self::slot("meta", IDENTITY);
        if let Some(v) = self.db.get_cf(self.cf("meta")?, IDENTITY)? {
            let plain = self.key.open(&slot, &v, "meta/identity")?;
            return IdentityKey::from_bytes(&plain)
                .map_err(|_| StoreError::Corrupt("meta/identity".into()));
        }
        let key = IdentityKey::generate(rng);
        let sealed = self.key.seal(&slot, &key.to_bytes())?;
        self.put("meta", IDENTITY, &sealed)?;
        Ok(key)
    }

    /// Records where round `id` stands, synced (no log entry: used for `Prepared`).
    pub fn put_round(&self, id: &[u8; 32], record: &RoundRecord) -> Result<(), StoreError> {
        let sealed = self.key.seal(&Self::slot("rounds", id), &record.encode())?;
        self.put("rounds", id, &sealed)
    }

    /// Ends round `id` in one synced batch: its final record, the epoch state it
    /// installs (if any), and log leaf `log_index` (which must be the next free one).
    /// A crash leaves either all of it or none.
    pub fn finish_round(
        &self,
        id: &[u8; 32],
        record: &RoundRecord,
        install: Option<(Epoch, &EpochState)>,
        log_index: u64,
        leaf: &Hash,
    ) -> Result<(), StoreError> {
        let expected = self.log_len()?;
        if log_index != expected {
            return Err(StoreError::LogOrder {
                got: log_index,
                expected,
            });
        }
        let mut batch = rocksdb::WriteBatch::default();
        let sealed = self.key.seal(&Self::slot("rounds", id), &record.encode())?;
        batch.put_cf(self.cf("rounds")?, id, &sealed);
        if let Some((epoch, state)) = install {
            let k = epoch.0.to_be_bytes();
            let sealed = self
                .key
                .seal(&Self::slot("epochs", &k), &encode_epoch(state))?;
            batch.put_cf(self.cf("epochs")?, k, &sealed);
        }
        batch.put_cf(self.cf("log")?, log_index.to_be_bytes(), leaf);
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        if install.is_some() {
            // The replaced share leaves rocksdb's files.
            self.db
                .compact_range_cf(self.cf("epochs")?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Every round this node took part in, by id.
    pub fn rounds(&self) -> Result<BTreeMap<[u8; 32], RoundRecord>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self
            .db
            .iterator_cf(self.cf("rounds")?, rocksdb::IteratorMode::Start)
        {
            let (k, v) = item?;
            let id: [u8; 32] = k
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("rounds/{}", hex_of(&k))))?;
            out.insert(id, self.open_round(&id, &v)?);
        }
        Ok(out)
    }

    /// Where round `id` stands, if this node has a record of it.
    pub fn round(&self, id: &[u8; 32]) -> Result<Option<RoundRecord>, StoreError> {
        self.db
            .get_cf(self.cf("rounds")?, id)?
            .map(|v| self.open_round(id, &v))
            .transpose()
    }

    fn open_round(&self, id: &[u8; 32], sealed: &[u8]) -> Result<RoundRecord, StoreError> {
        let name = format!("rounds/{}", hex_of(id));
        let plain = self.key.open(&Self::slot("rounds", id), sealed, &name)?;
        RoundRecord::decode(&plain).map_err(|_| StoreError::Corrupt(name))
    }

    /// Raw access for tests of tampering: the stored bytes of `table/key`.
    #[doc(hidden)]
    pub fn raw(&self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(table)?, key)?)
    }

    /// Raw write for tests of tampering.
    #[doc(hidden)]
    pub fn raw_put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.put(table, key, value)
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn epoch_state_decoding_is_strict() {
        let (shares, public) = crate::share::dealer_split(
            &crate::share::SecretScalar::new(p256::Scalar::from(3u64)),
            2,
            3,
            &mut rand::rng(),
        )
        .unwrap();
        let st = EpochState {
            share: shares[0].clone(),
            public,
        };
        let bytes = encode_epoch(&st);
        let back = decode_epoch(&bytes).unwrap();
        assert_eq!(back.public, st.public);
        assert_eq!(back.share.index, st.share.index);
        for cut in 0..bytes.len() {
            assert!(decode_epoch(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode_epoch(&longer).is_err());
        let mut zero_index = bytes.to_vec();
        zero_index[..2].copy_from_slice(&[0, 0]);
        assert!(decode_epoch(&zero_index).is_err());
        let mut bad_point = bytes.to_vec();
        bad_point[2 + 32 + 2 + 1] = 0x07; // no SEC1 tag
        assert!(decode_epoch(&bad_point).is_err());
    }

    #[test]
    fn round_records_decode_strictly() {
        let (shares, public) = crate::share::dealer_split(
            &crate::share::SecretScalar::new(p256::Scalar::from(9u64)),
            2,
            2,
            &mut rand::rng(),
        )
        .unwrap();
        let records = [
            RoundRecord::Prepared {
                spec: vec![1, 2, 3],
                digest: [4; 32],
                state: EpochState {
                    share: shares[1].clone(),
                    public,
                },
            },
            RoundRecord::Committed {
                spec: vec![5; 40],
                digest: [6; 32],
            },
            RoundRecord::Aborted {
                reason: "timeout".into(),
            },
        ];
        for rec in &records {
            let bytes = rec.encode();
            let back = RoundRecord::decode(&bytes).unwrap();
            assert_eq!(back.encode(), bytes);
            for cut in 0..bytes.len() {
                assert!(RoundRecord::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(RoundRecord::decode(&longer).is_err());
        }
        assert!(RoundRecord::decode(&[9]).is_err());
    }
}
