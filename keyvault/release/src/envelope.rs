//! The sealed release envelope: a gatekeeper's partial evaluation, encrypted to the
//! requesting worker with HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM, using the `hpke` crate for keys, the key schedule and the
//! AEAD. The KEM's two Diffie-Hellman halves are [`Dhkem`]'s: `Encap` on `ring` (a fresh
//! ephemeral key and one ECDH, about five times faster than the pure-Rust arithmetic),
//! `Decap` with the recipient's public key kept from key generation rather than
//! recomputed (a fixed-base multiplication per envelope). Tests check both against
//! `hpke`'s own DHKEM and RFC 9180's test vector. The HPKE `info` is
//! [`phalanx_threshold::tag::RELEASE_ENVELOPE`] followed by the request transcript hash, so an
//! envelope opens only for the request it answers. The worker's HPKE public key is the
//! one its attestation report data binds (checked by the caller).

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, HpkeError, Kem as _, OpModeR, OpModeS, Serializable};
use p256::elliptic_curve::subtle::{Choice, ConstantTimeEq};
use phalanx_threshold::error::Error;
use zeroize::Zeroizing;

/// `hpke`'s DHKEM(P-256, HKDF-SHA256): keys, `DeriveKeyPair`, encodings.
type Kem = DhP256HkdfSha256;
type PublicKey = <Kem as hpke::Kem>::PublicKey;

/// RFC 9180 §4.1: `suite_id = "KEM" ‖ I2OSP(kem_id, 2)`, for DHKEM(P-256, HKDF-SHA256).
const KEM_SUITE_ID: [u8; 5] = *b"KEM\x00\x10";

/// RFC 9180 §4.1 `ExtractAndExpand(dh, kem_context)` with HKDF-SHA256 (`ring`):
/// `LabeledExtract("", "eae_prk", dh)` then `LabeledExpand(prk, "shared_secret",
/// kem_context, 32)`, into a shared secret of the KEM.
fn extract_and_expand(
    dh: &[u8],
    kem_context: &[&[u8]],
) -> Result<hpke::kem::SharedSecret<Dhkem>, ()> {
    use ring::hkdf;
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    const VERSION: &[u8] = b"HPKE-v1";
    let labeled_ikm = Zeroizing::new([VERSION, &KEM_SUITE_ID, b"eae_prk", dh].concat());
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(&labeled_ikm);
    let len = 32u16.to_be_bytes();
    let mut info: Vec<&[u8]> = vec![&len, VERSION, &KEM_SUITE_ID, b"shared_secret"];
    info.extend_from_slice(kem_context);
    let mut shared = hpke::kem::SharedSecret::<Dhkem>::default();
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(&mut shared.0))
        .map_err(|_| ())?;
    Ok(shared)
}

/// DHKEM(P-256, HKDF-SHA256) of RFC 9180, as the envelopes run it; a recipient or
/// sender using `hpke`'s [`DhP256HkdfSha256`] cannot tell the difference.
///
/// - `Encap`: the ephemeral key and the Diffie-Hellman on `ring` (whose ECDH takes
///   ephemeral keys only, which is exactly what a sender has), the ephemeral key drawn
///   from the operating system by `ring`; in a browser (`wasm32-unknown-unknown`, where
///   ring has no randomness) `hpke`'s own `Encap` with the RNG it is given.
/// - `Decap`: the Diffie-Hellman with `p256` (constant time: the scalar is the
///   recipient's secret) and the recipient's public key as [`RecipientKey`] kept it.
/// - Keys and `DeriveKeyPair`: `hpke`'s.
///
/// Base mode only: authenticated (`Auth`) encapsulation is refused.
pub struct Dhkem;

impl hpke::Kem for Dhkem {
    type PublicKey = PublicKey;
    type PrivateKey = RecipientKey;
    type EncappedKey = <Kem as hpke::Kem>::EncappedKey;
    type NSecret = <Kem as hpke::Kem>::NSecret;
    const KEM_ID: u16 = <Kem as hpke::Kem>::KEM_ID;

    fn sk_to_pk(sk: &RecipientKey) -> PublicKey {
        sk.pk.clone()
    }

    fn derive_keypair(ikm: &[u8]) -> (RecipientKey, PublicKey) {
        let (sk, pk) = Kem::derive_keypair(ikm);
        (RecipientKey { sk, pk: pk.clone() }, pk)
    }

    fn decap(
        sk_recip: &RecipientKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &Self::EncappedKey,
    ) -> Result<hpke::kem::SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let enc = encapped_key.to_bytes();
        // On the curve and not the identity, or refused.
        let their = p256::PublicKey::from_sec1_bytes(&enc).map_err(|_| HpkeError::DecapError)?;
        let secret = p256::SecretKey::from_slice(&Zeroizing::new(sk_recip.sk.to_bytes()))
            .map_err(|_| HpkeError::DecapError)?;
        let dh = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), their.as_affine());
        extract_and_expand(dh.raw_secret_bytes(), &[&enc, &sk_recip.pk.to_bytes()])
            .map_err(|()| HpkeError::DecapError)
    }

    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    fn encap_with_rng(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&RecipientKey, &PublicKey)>,
        _csprng: &mut impl rand_core::CryptoRng,
    ) -> Result<(hpke::kem::SharedSecret<Self>, Self::EncappedKey), HpkeError> {
        use ring::agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral};
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let rng = ring::rand::SystemRandom::new();
        let sk_e =
            EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| HpkeError::EncapError)?;
        let pk_e = sk_e
            .compute_public_key()
            .map_err(|_| HpkeError::EncapError)?;
        let pk_r = pk_recip.to_bytes();
        let shared = agree_ephemeral(sk_e, &UnparsedPublicKey::new(&ECDH_P256, &pk_r[..]), |dh| {
            extract_and_expand(dh, &[pk_e.as_ref(), &pk_r[..]])
        })
        .map_err(|_| HpkeError::EncapError)?
        .map_err(|()| HpkeError::EncapError)?;
        let enc = Self::EncappedKey::from_bytes(pk_e.as_ref())?;
        Ok((shared, enc))
    }

    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    fn encap_with_rng(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&RecipientKey, &PublicKey)>,
        csprng: &mut impl rand_core::CryptoRng,
    ) -> Result<(hpke::kem::SharedSecret<Self>, Self::EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (shared, enc) = Kem::encap_with_rng(pk_recip, None, csprng)?;
        Ok((hpke::kem::SharedSecret(shared.0), enc))
    }
}

/// A worker's (or contract's) HPKE key pair. The private key is zeroized on drop by
/// `hpke`; the public key is kept so that opening an envelope need not recompute it.
#[derive(Clone)]
pub struct RecipientKey {
    sk: <Kem as hpke::Kem>::PrivateKey,
    pk: PublicKey,
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
        Dhkem::gen_keypair_with_rng(&mut rng).0
    }

    /// The key pair derived from `ikm` (RFC 9180 `DeriveKeyPair`): the same secret
    /// always gives the same pair, which is how a contract's key pair comes from its
    /// gatekeeper-derived secret and how a sealed identity is restored. `ikm` must be
    /// secret and at least 32 bytes of entropy.
    pub fn derive(ikm: &[u8]) -> Self {
        Dhkem::derive_keypair(ikm).0
    }

    /// The public key (uncompressed SEC1, 65 bytes), to be bound in report data.
    pub fn public_bytes(&self) -> Vec<u8> {
        self.pk.to_bytes().to_vec()
    }
}

/// What `hpke` asks of a private key: the secret scalar's encoding (the public key is
/// recomputed when one is read back).
impl Serializable for RecipientKey {
    type OutputSize = <<Kem as hpke::Kem>::PrivateKey as Serializable>::OutputSize;

    fn write_exact(&self, buf: &mut [u8]) {
        self.sk.write_exact(buf);
    }
}

impl Deserializable for RecipientKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(encoded)?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(Self { sk, pk })
    }
}

impl ConstantTimeEq for RecipientKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.sk.ct_eq(&other.sk)
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
pub fn seal(
    recipient_public: &[u8],
    transcript: &[u8; 32],
    plaintext: &[u8],
) -> Result<Sealed, Error> {
    seal_with_info(recipient_public, &info(transcript), plaintext)
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
/// command's contract, sender and nonce; a query's; an answer's). The ephemeral key
/// comes from the operating system's randomness.
pub fn seal_with_info(
    recipient_public: &[u8],
    info: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, Error> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public)
        .map_err(|_| Error::InvalidKey("HPKE public key"))?;
    // hpke's API takes an RNG, which `Dhkem` leaves alone outside a browser: ring
    // draws the ephemeral key from the operating system itself.
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Dhkem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        b"",
        &mut rand::rng(),
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
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Dhkem>(
        &OpModeR::Base,
        key,
        &enc,
        info,
        &sealed.ciphertext,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| Error::EnvelopeOpen)
}

pub use phalanx_threshold::derive::PARTIAL_LEN;
