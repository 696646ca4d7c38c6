//! Sealing at rest: AES-256-GCM (`ring`) under a key only this worker's TEE can get,
//! with a domain tag and what the blob is for as associated data, a random nonce per
//! seal. Used for the worker's identity and for contract checkpoints. Files are written
//! to a temporary name, synced, renamed and the directory synced, so a crash leaves the
//! old blob or the new one, never half of one.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::io::Write as _;
use std::path::Path;
use zeroize::Zeroizing;

/// Why a sealed blob could not be written or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// It does not open under this key and purpose: edited, truncated, or another's.
    #[error("the sealed blob does not open: edited, truncated, or sealed by another key")]
    Open,
    /// Sealing failed.
    #[error("sealing failed")]
    Seal,
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A sealing key (zeroized by `ring` on drop).
pub struct SealingKey(LessSafeKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// The key derived from `secret` for `purpose` (HKDF-SHA256, salt = the tag).
    pub fn derive(secret: &[u8], tag: &[u8], purpose: &[u8]) -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(Some(tag), secret)
            .expand(purpose, &mut key[..])
            .map_err(|_| SealError::Seal)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &key[..]).map_err(|_| SealError::Seal)?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    /// `nonce ‖ AES-256-GCM(plaintext)` with associated data `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| SealError::Seal)?;
        Ok([nonce.as_slice(), &buf].concat())
    }

    /// Opens [`Self::seal`]'s output.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (nonce, ct) = sealed
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(SealError::Open)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| SealError::Open)?
            .len();
        buf.truncate(plain);
        Ok(buf)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename, 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SealError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    // The rename is durable only once the directory is.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Reads `path`, `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SealError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_blob_opens_only_unchanged_under_its_key_and_purpose() {
        let k = SealingKey::derive(&[1; 32], b"tag", b"a").unwrap();
        let sealed = k.seal(b"ad", b"secret").unwrap();
        assert_eq!(&k.open(b"ad", &sealed).unwrap()[..], b"secret");
        assert!(k.open(b"other", &sealed).is_err());
        let other = SealingKey::derive(&[1; 32], b"tag", b"b").unwrap();
        assert!(other.open(b"ad", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open(b"ad", &bad).is_err(), "byte {i}");
        }
        assert!(k.open(b"ad", &sealed[..sealed.len() - 1]).is_err());
        assert!(k.open(b"ad", &[]).is_err());
    }
}
