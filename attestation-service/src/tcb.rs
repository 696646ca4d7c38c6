//! TCB statuses and TCB level matching, after Intel's QVL.
//!
//! Matching walks the TCB Info's levels in Intel's order (highest first) and takes the
//! first one the platform meets in every component: the 16 SGX TCB components of the
//! PCK certificate's CPUSVN, its PCE SVN, and for TDX the 16 bytes of TEE_TCB_SVN.
//! When TEE_TCB_SVN byte 1 (the TDX module major version) is non-zero, bytes 0 and 1
//! belong to the TDX module and are matched against the module identity `TDX_xx`
//! instead (byte 0 is the module ISVSVN); comparing all 16 bytes naively is wrong.
//!
//! Statuses then converge as Intel's `convergeTcbStatuses` does: only an `OutOfDate`
//! or `Revoked` component (QE, TDX module) lowers the platform status.

use crate::collateral::{QeIdentity, QeTcbLevel, TcbInfo, TcbLevel, TdxModuleTcbLevel};
use crate::error::Error;

/// A TCB status, as Intel names it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum TcbStatus {
    /// The platform is patched.
    UpToDate,
    /// Patched, but software hardening is needed (advisories apply).
    SWHardeningNeeded,
    /// Patched, but the platform configuration needs attention.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// The platform TCB is out of date.
    OutOfDate,
    /// Out of date, and configuration needed.
    OutOfDateConfigurationNeeded,
    /// The TCB is revoked: the platform's keys must not be trusted.
    Revoked,
}

impl TcbStatus {
    /// All statuses.
    pub const ALL: [TcbStatus; 7] = [
        TcbStatus::UpToDate,
        TcbStatus::SWHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSWHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Intel's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
        }
    }

    /// Parses Intel's spelling.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::MalformedCollateral {
                what: "TCB status",
                reason: format!("unknown status {s:?}"),
            })
    }

    /// Converges a platform status with a component's (QE or TDX module), as Intel's
    /// QVL does: a revoked component revokes; an out-of-date one makes the platform
    /// out of date (keeping "configuration needed"); anything else leaves it.
    pub fn converge(self, component: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (component, self) {
            (Revoked, _) => Revoked,
            (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
            (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => {
                OutOfDateConfigurationNeeded
            }
            _ => self,
        }
    }
}

impl std::fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The platform's TCB as the PCK certificate and the quote state it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformTcb<'a> {
    /// SGX TCB components (from the PCK certificate).
    pub sgx_components: &'a [u8; 16],
    /// PCE SVN (from the PCK certificate).
    pub pce_svn: u16,
    /// TEE_TCB_SVN (TDX quotes only).
    pub tee_tcb_svn: Option<&'a [u8; 16]>,
}

/// The first TCB level of `tcb_info` that `platform` meets in every component.
///
/// Also returns the level's position in the TCB Info: levels before it are newer.
pub fn match_platform_level<'t>(
    tcb_info: &'t TcbInfo,
    platform: &PlatformTcb<'_>,
) -> Result<(usize, &'t TcbLevel), Error> {
    tcb_info
        .tcb_levels
        .iter()
        .enumerate()
        .find(|(_, level)| meets(level, platform))
        .ok_or(Error::TcbLevelNotFound)
}

fn meets(level: &TcbLevel, p: &PlatformTcb<'_>) -> bool {
    let sgx_ok = p
        .sgx_components
        .iter()
        .zip(&level.sgx_components)
        .all(|(have, need)| have >= need);
    if !sgx_ok || p.pce_svn < level.pce_svn {
        return false;
    }
    match (p.tee_tcb_svn, &level.tdx_components) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(have), Some(need)) => {
            // With a module version in byte 1, bytes 0 and 1 are the module's.
            let skip = if have[1] > 0 { 2 } else { 0 };
            have.iter().zip(need).skip(skip).all(|(h, n)| h >= n)
        }
    }
}

/// The TDX module TCB level for `tee_tcb_svn`, or `None` when byte 1 (module version)
/// is zero. Also checks MRSIGNERSEAM and SEAMATTRIBUTES against the identity.
pub fn match_tdx_module<'t>(
    tcb_info: &'t TcbInfo,
    tee_tcb_svn: &[u8; 16],
    mr_signer_seam: &[u8; 48],
    seam_attributes: &[u8; 8],
) -> Result<Option<&'t TdxModuleTcbLevel>, Error> {
    let check = |m: &crate::collateral::TdxModule| -> Result<(), Error> {
        if &m.mrsigner != mr_signer_seam {
            return Err(Error::TdxModuleMismatch {
                field: "MRSIGNERSEAM",
            });
        }
        if !masked_eq(seam_attributes, &m.attributes_mask, &m.attributes) {
            return Err(Error::TdxModuleMismatch {
                field: "SEAMATTRIBUTES",
            });
        }
        Ok(())
    };
    let base = tcb_info
        .tdx_module
        .as_ref()
        .ok_or(Error::TdxModuleMismatch {
            field: "tdxModule (absent)",
        })?;
    check(base)?;
    let version = tee_tcb_svn[1];
    if version == 0 {
        return Ok(None);
    }
    let id = format!("TDX_{version:02X}");
    let identity = tcb_info
        .tdx_module_identities
        .iter()
        .find(|m| m.id.eq_ignore_ascii_case(&id))
        .ok_or(Error::TdxModuleIdentityNotFound { id })?;
    check(&identity.module)?;
    let isv_svn = tee_tcb_svn[0];
    identity
        .tcb_levels
        .iter()
        .find(|l| isv_svn >= l.isv_svn)
        .map(Some)
        .ok_or(Error::TdxModuleTcbLevelNotFound { isv_svn })
}

/// The QE Identity TCB level for a QE ISVSVN.
pub fn match_qe_level(qe_identity: &QeIdentity, isv_svn: u16) -> Result<&QeTcbLevel, Error> {
    qe_identity
        .tcb_levels
        .iter()
        .find(|l| isv_svn >= l.isv_svn)
        .ok_or(Error::QeTcbLevelNotFound { isv_svn })
}

/// Whether `value` and `expected` agree on every bit `mask` selects (Intel's masked
/// comparison of ATTRIBUTES, MISCSELECT and SEAMATTRIBUTES).
pub fn masked_eq(value: &[u8], mask: &[u8], expected: &[u8]) -> bool {
    value.len() == mask.len()
        && mask.len() == expected.len()
        && value
            .iter()
            .zip(mask)
            .zip(expected)
            .all(|((v, m), e)| v & m == e & m)
}

/// Appends the advisories of `more` not already in `into`, keeping order.
pub fn merge_advisories(into: &mut Vec<String>, more: &[String]) {
    for a in more {
        if !into.contains(a) {
            into.push(a.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcbStatus::*;

    #[test]
    fn converge_follows_intel() {
        assert_eq!(UpToDate.converge(UpToDate), UpToDate);
        assert_eq!(UpToDate.converge(OutOfDate), OutOfDate);
        assert_eq!(SWHardeningNeeded.converge(OutOfDate), OutOfDate);
        assert_eq!(
            ConfigurationNeeded.converge(OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(
            ConfigurationAndSWHardeningNeeded.converge(OutOfDate),
            OutOfDateConfigurationNeeded
        );
        assert_eq!(OutOfDate.converge(OutOfDate), OutOfDate);
        for s in TcbStatus::ALL {
            assert_eq!(s.converge(Revoked), Revoked);
            assert_eq!(s.converge(UpToDate), s);
            assert_eq!(TcbStatus::parse(s.as_str()), Ok(s));
        }
        assert!(TcbStatus::parse("upToDate").is_err());
    }
}
