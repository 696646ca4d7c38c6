//! TCB statuses and TCB level matching, after Intel's QVL.
//!
//! Matching walks the TCB Info's levels in Intel's order (highest first) and takes the
//! first one the platform meets in every component: the 16 SGX TCB components of the
//! PCK certificate's CPUSVN, its PCE SVN, and for TDX the 16 bytes of TEE_TCB_SVN.
//! When TEE_TCB_SVN byte 1 (the TDX module major version) is non-zero, bytes 0 and 1
//! belong to the TDX module and are matched against the module identity `TDX_xx`
//! instead (byte 0 is the module ISVSVN); comparing all 16 bytes naively is wrong.
//!
//! Levels are in Intel's order because [`crate::collateral::TcbInfo::parse`] sorts them
//! by TCB (duplicates refused), not because the JSON lists them so. Statuses then
//! converge as Intel's QVL does: only an out-of-date or revoked component (QE, TDX
//! module) lowers the platform status; see `research/intel-qvl-tcb-evaluation.md`.

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
    /// A TD 1.5 whose TDX module is out of date, on a platform that already runs an
    /// up-to-date module it would get by relaunching (TEE_TCB_SVN2): relaunch the TD.
    /// Never a TCB Info level's status; the result of the relaunch check.
    TDRelaunchAdvised,
    /// The same, with configuration needed on the platform.
    TDRelaunchAdvisedConfigurationNeeded,
}

impl TcbStatus {
    /// The statuses a TCB Info level may carry (the relaunch statuses are results
    /// only).
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
            TcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
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

impl TcbStatus {
    /// Converges a platform status with the QE's, as Intel's
    /// `convergeTcbStatusWithQeTcbStatus` does: a revoked QE revokes; any QE status
    /// other than UpToDate counts as out of date (Intel reports
    /// `ISVSVN_OUT_OF_DATE` for ConfigurationNeeded and OutOfDateConfigurationNeeded QE
    /// levels too).
    pub fn converge_qe(self, qe: TcbStatus) -> TcbStatus {
        match qe {
            TcbStatus::UpToDate => self,
            TcbStatus::Revoked => TcbStatus::Revoked,
            _ => self.converge(TcbStatus::OutOfDate),
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
/// is zero, after Intel's QVL (`QuoteVerifier.cpp`, `TdxModuleCheck.cpp`):
///
/// - the module section is `tcbInfo.tdxModule`, replaced wholesale by the
///   `tdxModuleIdentities` entry `TDX_<byte 1>` when byte 1 is non-zero (the base
///   section is then not compared);
/// - MRSIGNERSEAM must equal its `mrsigner`; SEAMATTRIBUTES must be all zero and equal
///   its `attributes` (Intel loads `attributesMask` but does not apply it);
/// - the module level is the first (highest ISVSVN) that byte 0 meets, and only
///   UpToDate, OutOfDate and Revoked are recognized there.
pub fn match_tdx_module<'t>(
    tcb_info: &'t TcbInfo,
    tee_tcb_svn: &[u8; 16],
    mr_signer_seam: &[u8; 48],
    seam_attributes: &[u8; 8],
) -> Result<Option<&'t TdxModuleTcbLevel>, Error> {
    let version = tee_tcb_svn[1];
    let identity = if version == 0 {
        None
    } else {
        let id = format!("TDX_{version:02X}");
        Some(
            tcb_info
                .tdx_module_identities
                .iter()
                .find(|m| m.id.eq_ignore_ascii_case(&id))
                .ok_or(Error::TdxModuleIdentityNotFound { id })?,
        )
    };
    let module = match identity {
        Some(i) => &i.module,
        None => tcb_info
            .tdx_module
            .as_ref()
            .ok_or(Error::TdxModuleMismatch {
                field: "tdxModule (absent)",
            })?,
    };
    if &module.mrsigner != mr_signer_seam {
        return Err(Error::TdxModuleMismatch {
            field: "MRSIGNERSEAM",
        });
    }
    if seam_attributes != &[0u8; 8] || seam_attributes != &module.attributes {
        return Err(Error::TdxModuleMismatch {
            field: "SEAMATTRIBUTES",
        });
    }
    let Some(identity) = identity else {
        return Ok(None);
    };
    let isv_svn = tee_tcb_svn[0];
    let level = identity
        .tcb_levels
        .iter()
        .find(|l| isv_svn >= l.isv_svn)
        .ok_or(Error::TdxModuleTcbLevelNotFound { isv_svn })?;
    match level.tcb_status {
        TcbStatus::UpToDate | TcbStatus::OutOfDate | TcbStatus::Revoked => Ok(Some(level)),
        status => Err(Error::UnrecognizedModuleTcbStatus { status }),
    }
}

/// The first TCB level the platform's SGX components and PCE SVN meet (Intel's
/// `sgxTcbLevel`, used by the TD relaunch check).
pub fn match_sgx_level<'t>(
    tcb_info: &'t TcbInfo,
    platform: &PlatformTcb<'_>,
) -> Option<&'t TcbLevel> {
    let sgx_only = PlatformTcb {
        tee_tcb_svn: None,
        ..*platform
    };
    tcb_info.tcb_levels.iter().find(|l| meets(l, &sgx_only))
}

/// What Intel's `TDRelaunchCheck` does for a TD 1.5 quote: when the TD runs an
/// out-of-date module (`module` OutOfDate, `tdx` OutOfDate or
/// OutOfDateConfigurationNeeded) on a platform whose SGX TCB and QE are current, and
/// TEE_TCB_SVN2 shows the module a relaunch would run is the latest, the status becomes
/// [`TcbStatus::TDRelaunchAdvised`] (or its configuration-needed form). Otherwise `tdx`
/// is returned unchanged.
pub fn relaunch_check(
    tcb_info: &TcbInfo,
    sgx: TcbStatus,
    tdx: TcbStatus,
    module: Option<TcbStatus>,
    qe: TcbStatus,
    tee_tcb_svn2: &[u8; 16],
) -> Result<TcbStatus, Error> {
    use TcbStatus::*;
    let applies = qe == UpToDate
        && matches!(
            sgx,
            UpToDate | SWHardeningNeeded | ConfigurationNeeded | ConfigurationAndSWHardeningNeeded
        )
        && matches!(tdx, OutOfDate | OutOfDateConfigurationNeeded)
        && module == Some(OutOfDate);
    if !applies {
        return Ok(tdx);
    }
    let Some(latest) = tcb_info.tcb_levels.first() else {
        return Ok(tdx);
    };
    let latest_tdx = latest.tdx_components.unwrap_or([0; 16]);
    let module_ok = if tee_tcb_svn2[1] == 0 {
        tee_tcb_svn2[0] >= latest_tdx[0]
    } else {
        let id = format!("TDX_{:02X}", tee_tcb_svn2[1]);
        let identity = tcb_info
            .tdx_module_identities
            .iter()
            .find(|m| m.id.eq_ignore_ascii_case(&id))
            .ok_or(Error::TdxModuleIdentityNotFound { id })?;
        let highest = identity.tcb_levels.first().map_or(0, |l| l.isv_svn);
        tee_tcb_svn2[0] >= highest
    };
    if !(module_ok && tee_tcb_svn2[2] >= latest_tdx[2]) {
        return Ok(tdx);
    }
    let configuration = |s: TcbStatus| {
        matches!(
            s,
            ConfigurationNeeded | ConfigurationAndSWHardeningNeeded | OutOfDateConfigurationNeeded
        )
    };
    Ok(if configuration(sgx) || configuration(tdx) {
        TDRelaunchAdvisedConfigurationNeeded
    } else {
        TDRelaunchAdvised
    })
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

    #[test]
    fn qe_convergence_follows_intel() {
        // Intel's table: every non-UpToDate, non-Revoked QE status is "out of date".
        for qe in [ConfigurationNeeded, OutOfDate, OutOfDateConfigurationNeeded] {
            assert_eq!(UpToDate.converge_qe(qe), OutOfDate);
            assert_eq!(SWHardeningNeeded.converge_qe(qe), OutOfDate);
            assert_eq!(
                ConfigurationNeeded.converge_qe(qe),
                OutOfDateConfigurationNeeded
            );
            assert_eq!(
                ConfigurationAndSWHardeningNeeded.converge_qe(qe),
                OutOfDateConfigurationNeeded
            );
            assert_eq!(OutOfDate.converge_qe(qe), OutOfDate);
            assert_eq!(Revoked.converge_qe(qe), Revoked);
        }
        for s in TcbStatus::ALL {
            assert_eq!(s.converge_qe(UpToDate), s);
            assert_eq!(s.converge_qe(Revoked), Revoked);
        }
    }
}
