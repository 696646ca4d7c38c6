//! Tenant ids: the one derivation that turns a TEE's whole identity into the name its
//! keys are derived under (the `tenant` of a `phalanx_threshold::derive::KeyId`).
//!
//! A tenant must be everything that decides what code runs with the key, and nothing
//! that another workload can share by accident:
//!
//! - **TDX**: MRTD (the TD's initial image: firmware), RTMR0–3 (kernel, initrd, command
//!   line, application, as extended at boot), MRCONFIGID, MROWNER and MROWNERCONFIG
//!   (the host-provided configuration and owner identity), TDATTRIBUTES and XFAM (how
//!   the TD was launched: `SEPT_VE_DISABLE`, `MIGRATABLE`, `PERFMON`, the extended
//!   features it may use). MRTD alone would let every TD booted from the same firmware
//!   derive every other TD's keys; without the attributes the same image launched
//!   migratable, or with EPT violations left to the guest, would share keys with the
//!   hardened launch.
//! - **SGX**: MRENCLAVE; with Key Separation and Sharing (ATTRIBUTES.KSS set) also
//!   CONFIGID and CONFIGSVN, which the enclave's loader chooses at launch.
//!
//! ```text
//! tenant = lower-hex SHA-256( "phalanx/v1/tenant" ‖ kind ‖ fields )
//!   SGX:  kind = 0x01 ‖ MRENCLAVE(32) ‖ kss(1: 0 or 1) ‖ [CONFIGID(64) ‖ CONFIGSVN(2, BE)]
//!   TDX:  kind = 0x02 ‖ MRTD(48) ‖ RTMR0..3(4×48) ‖ MRCONFIGID(48) ‖ MROWNER(48)
//!         ‖ MROWNERCONFIG(48) ‖ TDATTRIBUTES(8) ‖ XFAM(8)
//! ```
//!
//! Every field has a fixed length, so the encoding is injective. The gatekeeper applies
//! [`TeeIdentity::tenant_id`] to the evidence in a worker's attestation token; the CLI
//! prints it for a quote (`phalanx quote verify`); the registry lists it as the
//! worker's measurement. Nothing else computes a tenant.

use crate::{Evidence, EvidenceMeasurements};
use phalanx_types::TenantId;
use sha2::{Digest, Sha256};

/// The SGX ATTRIBUTES.FLAGS bit for Key Separation and Sharing (bit 7 of the first,
/// little-endian byte).
pub const SGX_FLAGS_KSS: u8 = 0x80;

/// The TEE identity the tenant is derived from, and the bare measurement (MRENCLAVE
/// or MRTD, lower-case hex) for logs.
pub fn identity_of(evidence: &Evidence) -> (TeeIdentity, String) {
    match &evidence.measurements {
        EvidenceMeasurements::Sgx {
            mr_enclave,
            attributes,
            config_id,
            config_svn,
            ..
        } => (
            TeeIdentity::sgx(mr_enclave.0, &attributes.0, config_id.0, *config_svn),
            mr_enclave.to_string(),
        ),
        EvidenceMeasurements::Tdx {
            mr_td,
            rtmr,
            mr_config_id,
            mr_owner,
            mr_owner_config,
            td_attributes,
            xfam,
            ..
        } => (
            TeeIdentity::Tdx {
                mr_td: mr_td.0,
                rtmr: rtmr.map(|r| r.0),
                mr_config_id: mr_config_id.0,
                mr_owner: mr_owner.0,
                mr_owner_config: mr_owner_config.0,
                td_attributes: td_attributes.0,
                xfam: xfam.0,
            },
            mr_td.to_string(),
        ),
    }
}

impl TeeIdentity {
    /// The identity of a verified quote's measurements (the same as [`identity_of`]
    /// its evidence claims).
    pub fn of(m: &phalanx_dcap::verify::Measurements) -> Self {
        use phalanx_dcap::verify::Measurements;
        match m {
            Measurements::Sgx {
                mr_enclave,
                attributes,
                config_id,
                config_svn,
                ..
            } => Self::sgx(*mr_enclave, attributes, *config_id, *config_svn),
            Measurements::Tdx {
                mr_td,
                rtmr,
                mr_config_id,
                mr_owner,
                mr_owner_config,
                td_attributes,
                xfam,
                ..
            } => Self::Tdx {
                mr_td: *mr_td,
                rtmr: *rtmr,
                mr_config_id: *mr_config_id,
                mr_owner: *mr_owner,
                mr_owner_config: *mr_owner_config,
                td_attributes: *td_attributes,
                xfam: *xfam,
            },
        }
    }
}

/// The fields of a TEE identity that name its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
// A plain value hashed once where it is built: boxing the TDX variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum TeeIdentity {
    /// An SGX enclave.
    Sgx {
        /// MRENCLAVE.
        mr_enclave: [u8; 32],
        /// CONFIGID and CONFIGSVN, when the enclave runs with KSS (else `None`).
        kss: Option<([u8; 64], u16)>,
    },
    /// A TDX trust domain.
    Tdx {
        /// MRTD.
        mr_td: [u8; 48],
        /// RTMR0..3.
        rtmr: [[u8; 48]; 4],
        /// MRCONFIGID.
        mr_config_id: [u8; 48],
        /// MROWNER.
        mr_owner: [u8; 48],
        /// MROWNERCONFIG.
        mr_owner_config: [u8; 48],
        /// TDATTRIBUTES.
        td_attributes: [u8; 8],
        /// XFAM.
        xfam: [u8; 8],
    },
}

impl TeeIdentity {
    /// An SGX identity from the report fields: KSS is read off ATTRIBUTES, and CONFIGID
    /// and CONFIGSVN count only when it is set.
    pub fn sgx(
        mr_enclave: [u8; 32],
        attributes: &[u8; 16],
        config_id: [u8; 64],
        config_svn: u16,
    ) -> Self {
        let kss = attributes[0] & SGX_FLAGS_KSS != 0;
        Self::Sgx {
            mr_enclave,
            kss: kss.then_some((config_id, config_svn)),
        }
    }

    /// The 32-byte tenant digest (see the module doc for the encoding).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(phalanx_types::tag::TENANT);
        match self {
            Self::Sgx { mr_enclave, kss } => {
                h.update([1u8]);
                h.update(mr_enclave);
                match kss {
                    None => h.update([0u8]),
                    Some((config_id, config_svn)) => {
                        h.update([1u8]);
                        h.update(config_id);
                        h.update(config_svn.to_be_bytes());
                    }
                }
            }
            Self::Tdx {
                mr_td,
                rtmr,
                mr_config_id,
                mr_owner,
                mr_owner_config,
                td_attributes,
                xfam,
            } => {
                h.update([2u8]);
                h.update(mr_td);
                for r in rtmr {
                    h.update(r);
                }
                h.update(mr_config_id);
                h.update(mr_owner);
                h.update(mr_owner_config);
                h.update(td_attributes);
                h.update(xfam);
            }
        }
        h.finalize().into()
    }

    /// The tenant id: [`Self::digest`] (shown as lower-case hex).
    pub fn tenant_id(&self) -> TenantId {
        TenantId::new(self.digest())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn td() -> TeeIdentity {
        TeeIdentity::Tdx {
            mr_td: [1; 48],
            rtmr: [[2; 48]; 4],
            mr_config_id: [3; 48],
            mr_owner: [4; 48],
            mr_owner_config: [5; 48],
            td_attributes: [6; 8],
            xfam: [7; 8],
        }
    }

    #[test]
    fn every_tdx_field_changes_the_tenant() {
        let base = td().tenant_id();
        assert_eq!(base.to_string().len(), 64);
        let mut variants = Vec::new();
        for i in 0..10 {
            let mut t = td();
            if let TeeIdentity::Tdx {
                mr_td,
                rtmr,
                mr_config_id,
                mr_owner,
                mr_owner_config,
                td_attributes,
                xfam,
            } = &mut t
            {
                match i {
                    0 => mr_td[47] ^= 1,
                    1..=4 => rtmr[i - 1][0] ^= 1,
                    5 => mr_config_id[0] ^= 1,
                    6 => mr_owner[0] ^= 1,
                    7 => mr_owner_config[0] ^= 1,
                    // SEPT_VE_DISABLE is bit 28 of TDATTRIBUTES (byte 3, bit 4).
                    8 => td_attributes[3] ^= 0x10,
                    _ => xfam[0] ^= 1,
                }
            }
            variants.push(t.tenant_id());
        }
        for v in &variants {
            assert_ne!(v, &base);
        }
        variants.sort();
        variants.dedup();
        assert_eq!(variants.len(), 10);
    }

    #[test]
    fn sgx_config_counts_only_with_kss() {
        let plain = [0u8; 16];
        let mut kss = [0u8; 16];
        kss[0] = SGX_FLAGS_KSS;
        let a = TeeIdentity::sgx([7; 32], &plain, [1; 64], 1).tenant_id();
        let b = TeeIdentity::sgx([7; 32], &plain, [2; 64], 2).tenant_id();
        assert_eq!(a, b, "without KSS CONFIGID is not part of the identity");
        let c = TeeIdentity::sgx([7; 32], &kss, [1; 64], 1).tenant_id();
        let d = TeeIdentity::sgx([7; 32], &kss, [2; 64], 1).tenant_id();
        let e = TeeIdentity::sgx([7; 32], &kss, [1; 64], 2).tenant_id();
        assert!(c != a && c != d && c != e && d != e);
        // An SGX tenant never collides with a TDX one of related bytes.
        assert_ne!(a, td().tenant_id());
    }
}
