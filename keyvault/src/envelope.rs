//! The sealed release envelope: a gatekeeper's partial evaluation, encrypted to the
//! requesting worker with HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM, using the `hpke` crate. The HPKE `info` is
//! [`crate::tag::RELEASE_ENVELOPE`] followed by the request transcript hash, so an
//! envelope opens only for the request it answers. The worker's HPKE public key is the
//! one its attestation report data binds (checked by the caller).

use crate::derive::PartialEvaluation;
use crate::dleq::{DleqProof, point_bytes};
use crate::error::Error;
use crate::share::NodeIndex;
use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::DhP256HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use p256::Scalar;
use p256::elliptic_curve::PrimeField;
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
    [crate::tag::RELEASE_ENVELOPE, transcript].concat()
}

/// Seals `plaintext` to `recipient_public` for the request with `transcript` hash.
pub fn seal<R: rand_core::CryptoRng + ?Sized>(
    recipient_public: &[u8],
    transcript: &[u8; 32],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, Error> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_public)
        .map_err(|_| Error::Malformed("HPKE public key"))?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        &info(transcript),
        plaintext,
        b"",
        &mut RngRef(rng),
    )
    .map_err(|_| Error::Malformed("HPKE seal"))?;
    Ok(Sealed {
        enc: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Opens an envelope sealed to `key` for the request with `transcript` hash.
pub fn open(
    key: &RecipientKey,
    transcript: &[u8; 32],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.enc)
        .map_err(|_| Error::Malformed("HPKE encapsulated key"))?;
    hpke::single_shot_open::<AesGcm256, HkdfSha256, Kem>(
        &OpModeR::Base,
        &key.sk,
        &enc,
        &info(transcript),
        &sealed.ciphertext,
        b"",
    )
    .map(Zeroizing::new)
    .map_err(|_| Error::Malformed("HPKE envelope (wrong key, transcript or tampered)"))
}

/// Length of an encoded [`PartialEvaluation`]: index, compressed point, two scalars.
pub const PARTIAL_LEN: usize = 2 + 33 + 32 + 32;

impl PartialEvaluation {
    /// `index ‖ SEC1-compressed Y ‖ c ‖ s`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PARTIAL_LEN);
        out.extend_from_slice(&self.index.get().to_be_bytes());
        out.extend_from_slice(&point_bytes(&self.value));
        out.extend_from_slice(&self.proof.c.to_repr());
        out.extend_from_slice(&self.proof.s.to_repr());
        out
    }

    /// Strict decoding: exact length, non-zero index, a valid non-identity point,
    /// canonical scalars.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        if b.len() != PARTIAL_LEN {
            return Err(Error::Malformed("partial evaluation length"));
        }
        let (idx, rest) = b.split_at(2);
        let (point, rest) = rest.split_at(33);
        let (c, s) = rest.split_at(32);
        let idx: [u8; 2] = idx.try_into().map_err(|_| Error::Malformed("index"))?;
        let index = NodeIndex::new(u16::from_be_bytes(idx))?;
        // A compressed public key: on the curve and not the identity.
        if !matches!(point.first(), Some(0x02 | 0x03)) {
            return Err(Error::Malformed("partial evaluation point"));
        }
        let value = p256::PublicKey::from_sec1_bytes(point)
            .map(|pk| pk.to_projective())
            .map_err(|_| Error::Malformed("partial evaluation point"))?;
        let scalar = |bytes: &[u8]| -> Result<Scalar, Error> {
            let repr = p256::FieldBytes::try_from(bytes).map_err(|_| Error::Malformed("scalar"))?;
            Option::from(Scalar::from_repr(repr)).ok_or(Error::Malformed("non-canonical scalar"))
        };
        Ok(Self {
            index,
            value,
            proof: DleqProof {
                c: scalar(c)?,
                s: scalar(s)?,
            },
        })
    }
}
