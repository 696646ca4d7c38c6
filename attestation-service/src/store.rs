//! The service's persistent state (feature `server`): one rocksdb database with a column
//! family per kind of record.
//!
//! | table | key | value |
//! |---|---|---|
//! | `collateral` | [`CollateralKey::to_bytes`](crate::source::CollateralKey::to_bytes) | JSON [`CachedCollateral`](crate::source::CachedCollateral) |
//! | `policies` | policy id | JSON [`Policy`](crate::policy::Policy) |
//! | `keys` | `active` / `retired` | the result-signing key (PKCS#8) / retired public keys |
//!
//! Every write is synced before it returns, and writes that belong together go in one
//! atomic batch ([`Store::write`]), so a process killed at any instant leaves either the
//! old or the new state. The store is trusted like the data directory that holds it:
//! the signing key is kept in clear there (mode 0700 directory), as a key file would be.

use std::path::Path;

/// A table (rocksdb column family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Verified collateral by what it covers.
    Collateral,
    /// Policies by id.
    Policies,
    /// Result-signing keys.
    Keys,
}

impl Table {
    const ALL: [Table; 3] = [Table::Collateral, Table::Policies, Table::Keys];

    fn name(self) -> &'static str {
        match self {
            Table::Collateral => "collateral",
            Table::Policies => "policies",
            Table::Keys => "keys",
        }
    }
}

/// A storage failure (the message is rocksdb's, which never contains values).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// rocksdb failed.
    #[error("store: {0}")]
    Db(#[from] rocksdb::Error),
    /// The database lacks one of the service's column families.
    #[error("store: missing column family {0}")]
    MissingTable(&'static str),
}

/// A stored record: key and value.
pub type Record = (Vec<u8>, Vec<u8>);

/// One change of a batch.
#[derive(Debug)]
pub enum Change<'a> {
    /// Set `key` to `value`.
    Put(Table, &'a [u8], &'a [u8]),
    /// Remove `key`.
    Delete(Table, &'a [u8]),
}

/// The database.
pub struct Store {
    db: rocksdb::DB,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open_cf(&opts, dir, Table::ALL.map(Table::name))?;
        Ok(Self { db })
    }

    fn cf(&self, t: Table) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(t.name())
            .ok_or(StoreError::MissingTable(t.name()))
    }

    /// The value of `key`.
    pub fn get(&self, t: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(t)?, key)?)
    }

    /// Every record of `t`, in key order.
    pub fn scan(&self, t: Table) -> Result<Vec<Record>, StoreError> {
        self.db
            .iterator_cf(self.cf(t)?, rocksdb::IteratorMode::Start)
            .map(|r| {
                r.map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }

    /// Applies `changes` atomically and syncs them to disk.
    pub fn write(&self, changes: &[Change<'_>]) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for c in changes {
            match *c {
                Change::Put(t, k, v) => batch.put_cf(self.cf(t)?, k, v),
                Change::Delete(t, k) => batch.delete_cf(self.cf(t)?, k),
            }
        }
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        Ok(self.db.write_opt(batch, &opts)?)
    }

    /// Sets one value (synced).
    pub fn put(&self, t: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write(&[Change::Put(t, key, value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_reopen_and_tables_are_separate() {
        let dir = std::env::temp_dir().join(format!("phalanx-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let s = Store::open(&dir).unwrap();
            s.write(&[
                Change::Put(Table::Policies, b"a", b"1"),
                Change::Put(Table::Keys, b"a", b"2"),
            ])
            .unwrap();
            s.write(&[
                Change::Delete(Table::Policies, b"a"),
                Change::Put(Table::Policies, b"b", b"3"),
            ])
            .unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.get(Table::Policies, b"a").unwrap(), None);
        assert_eq!(
            s.get(Table::Keys, b"a").unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(
            s.scan(Table::Policies).unwrap(),
            vec![(b"b".to_vec(), b"3".to_vec())]
        );
        assert!(s.scan(Table::Collateral).unwrap().is_empty());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
