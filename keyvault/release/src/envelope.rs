//! The sealed release envelope: a gatekeeper's partial evaluation, encrypted to the
//! requesting worker with HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM, using the `hpke` crate. The HPKE `info` is
//! [`phalanx_threshold::tag::RELEASE_ENVELOPE`] followed by the request transcript hash, so an
//! envelope opens only for the request it answers. The worker's HPKE public key is the
//! one its attestation report data binds (checked by the caller).

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use phalanx_threshold::error::Error;
use zeroize::Zeroizing;

type Kem = DhP256HkdfSha256;

/// A worker's HPKE key pair. The private key is zeroized on drop by `hpke`.
pub struct RecipientKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    pk: <Kem as hpke::Kem>::PublicKey,
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecipientKey(public {})",
            hex_string(&self.public_bytes())
        )
    }
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl RecipientKey {
    /// A fresh key pair.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut rng = RngRef(rng);
        let (sk, pk) = Kem::gen_keypair_with_rng(&mut rng);
        Self { sk, pk }
    }

    /// The key pair derived from `ikm` (RFC 9180 `DeriveKeyPair`): the same secret
    /// always gives the same pair, which is how a contract's key pair comes from its
    /// gatekeeper-derived secret and how a sealed identity is restored. `ikm` must be
    /// secret and at least 32 bytes of entropy.
    pub fn derive(ikm: &[u8]) -> Self {
        let (sk, pk) = Kem::derive_keypair(ikm);
        Self { sk, pk }
    }

    /// The public key (uncompressed SEC1, 65 bytes), to be bound in report data.
    pub fn public_bytes(&self) -> Vec<u8> {
        self.pk.to_bytes().to_vec()
    }
}

/// `hpke` wants a sized RNG; this forwards to the caller's.
struct RngRef<'a, R: ?Sized>(&'a mut R);

impl<R: rand_core::CryptoRng + ?Sized> rand_core::TryRng for RngRef<'_, R> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<R: rand_core::CryptoRng + ?Sized> rand_core::TryCryptoRng for RngRef<'_, R> {}

/// An encapsulated key and ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// AES-256-GCM ciphertext with tag.
    pub ciphertext: Vec<u8>,
}

fn info(transcript: &[u8; 32]) -> Vec<u8> {
    [phalanx_threshold::tag::RELEASE_ENVELOPE, transcript].concat()
}

/// Length of an encapsulated key (DHKEM(P-256): an uncompressed point).
pub const ENC_LEN: usize = 65;

impl Sealed {
    /// `enc ‖ ciphertext`, the one-field form commands travel in.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.enc.as_slice(), &self.ciphertext].concat()
    }

    /// Splits [`Sealed::to_bytes`]; `None` when too short for a key and a tag.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < ENC_LEN + 16 {
            return None;
        }
        let (enc, ciphertext) = b.split_at(ENC_LEN);
        Some(Self {
            enc: enc.to_vec(),
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// Seals `plaintext` to `recipient_public` for the request with `transcript` hash.
pub fn seal<R: rand_core::CryptoRng + ?Sized>(
    recipient_public: &[u8],
    transcript: &[u8; 32],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, Error> {
    seal_with_info(recipient_public, &info(transcript), plaintext, rng)
}

/// Opens an envelope sealed to `key` for the request with `transcript` hash.
pub fn open(
    key: &RecipientKey,
    transcript: &[u8; 32],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    open_with_info(key, &info(transcript), sealed)
}

/// Seals `plaintext` to `recipient_public` under HPKE `info`, which must start with a
/// domain tag of [`phalanx_types::tag`] and bind whatever the envelope is for (a
/// command's contract, sender and nonce; a query's; an answer's).
pub fn seal_with_info<R: rand_core::CryptoRng + ?Sized>(
    recipient_public: &[u8],
    info: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, Error> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public)
        .map_err(|_| Error::InvalidKey("HPKE public key"))?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        b"",
        &mut RngRef(rng),
    )
    .map_err(|_| Error::EnvelopeSeal)?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Opens an envelope sealed to `key` under `info` ([`seal_with_info`]).
pub fn open_with_info(
    key: &RecipientKey,
    info: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
        .map_err(|_| Error::EnvelopeOpen)?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &key.sk,
        &enc,
        info,
        &sealed.ciphertext,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| Error::EnvelopeOpen)
}

pub use phalanx_threshold::derive::PARTIAL_LEN;
