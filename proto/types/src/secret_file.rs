//! The one way Phalanx writes and reads secret files (sealing keys, identity keys, admin
//! secrets, the simulated PKI): created with mode 0600 and never overwritten, read back
//! into memory that is zeroized on drop. Errors name the path, never the contents.

use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Shortest admin secret accepted, in characters (every service's bound).
pub const MIN_ADMIN_SECRET: usize = 16;

/// Why a secret file could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// The file system refused (exists already, missing, permissions). The reason is
    /// in the message, not also a source, so a printed error chain says it once.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        reason: std::io::Error,
    },
    /// A secret shorter than its minimum (an empty or truncated file must not open
    /// anything).
    #[error("the secret in {} is shorter than {min} characters", path.display())]
    TooShort {
        /// The file.
        path: PathBuf,
        /// The minimum.
        min: usize,
    },
    /// Not the 32 bytes of hex a key file holds (the message names no byte of it).
    #[error("{} is not a key file: 64 hex characters", path.display())]
    NotAKey {
        /// The file.
        path: PathBuf,
    },
    /// The system has no randomness to make a new secret from.
    #[error("no randomness for a new secret in {}", path.display())]
    NoRandomness {
        /// The file.
        path: PathBuf,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    |reason| SecretFileError::Io {
        path: path.to_owned(),
        reason,
    }
}

/// Creates `path`, which must not exist, with mode 0600 (on Unix), writes `bytes` and
/// syncs: a crash leaves either no file or the whole secret.
pub fn create(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Reads a secret file's bytes.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    std::fs::read(path).map(Zeroizing::new).map_err(io(path))
}

/// Reads a text secret (surrounding whitespace trimmed) of at least `min` characters.
pub fn read_text(path: &Path, min: usize) -> Result<Zeroizing<String>, SecretFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
    let secret = Zeroizing::new(text.trim().to_owned());
    if secret.chars().count() < min {
        return Err(SecretFileError::TooShort {
            path: path.to_owned(),
            min,
        });
    }
    Ok(secret)
}

/// Reads a key file: 32 secret bytes as 64 hex characters (`0x` allowed), nothing else.
/// The ledger's P-256 keys and the EVM registry's account keys are both such files.
pub fn read_key32(path: &Path) -> Result<Zeroizing<[u8; 32]>, SecretFileError> {
    let text = read_text(path, 64)?;
    let hex = text.strip_prefix("0x").unwrap_or(&text);
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex, key.as_mut_slice()).map_err(|_| SecretFileError::NotAKey {
        path: path.to_owned(),
    })?;
    Ok(key)
}

/// Reads the admin secret at `path`, first creating one (32 random bytes as hex, from
/// `fill`) if the file does not exist. Refuses a secret under [`MIN_ADMIN_SECRET`].
pub fn admin_secret(
    path: &Path,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> Result<Zeroizing<String>, SecretFileError> {
    if !path.exists() {
        let mut raw = Zeroizing::new([0u8; 32]);
        if !fill(raw.as_mut()) {
            return Err(SecretFileError::NoRandomness {
                path: path.to_owned(),
            });
        }
        create(path, Zeroizing::new(hex::encode(raw.as_ref())).as_bytes())?;
    }
    read_text(path, MIN_ADMIN_SECRET)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_files_are_exactly_32_bytes_of_hex() {
        let dir = std::env::temp_dir().join(format!("phalanx-key32-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = "ab".repeat(32);
        for (i, (text, ok)) in [
            (key.clone(), true),
            (format!("0x{key}\n"), true),
            (format!("+{}", &key[1..]), false),
            (key[..62].to_owned(), false),
            (format!("{key}00"), false),
            (format!("{}zz", &key[..62]), false),
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.join(format!("k{i}"));
            create(&p, text.as_bytes()).unwrap();
            match read_key32(&p) {
                Ok(k) => assert!(ok && *k == [0xab; 32], "{text:?}"),
                Err(e) => assert!(!ok && !e.to_string().contains("abab"), "{text:?}: {e}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn created_private_never_overwritten_and_short_secrets_refused() {
        let dir = std::env::temp_dir().join(format!("phalanx-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s");
        create(&p, b"0123456789abcdef\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(create(&p, b"x"), Err(SecretFileError::Io { .. })));
        // A missing file is named once, with its reason once (newcomer review: the
        // reason was printed twice by an error chain).
        let missing = dir.join("nope.secret");
        let e = read_text(&missing, 1).unwrap_err();
        assert!(std::error::Error::source(&e).is_none());
        let text = e.to_string();
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert!(text.contains("nope.secret"), "{text}");
        assert_eq!(read_text(&p, 16).unwrap().as_str(), "0123456789abcdef");
        assert!(matches!(
            read_text(&p, 17),
            Err(SecretFileError::TooShort { min: 17, .. })
        ));
        // A generated admin secret is 64 hex characters and stays the same.
        let a = dir.join("admin");
        let first = admin_secret(&a, |b| {
            b.fill(7);
            true
        })
        .unwrap();
        assert_eq!(first.len(), 64);
        let again = admin_secret(&a, |_| false).unwrap();
        assert_eq!(first, again);
        assert!(matches!(
            admin_secret(&dir.join("none"), |_| false),
            Err(SecretFileError::NoRandomness { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
