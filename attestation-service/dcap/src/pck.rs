//! Intel's SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1): FMSPC, PCE ID,
//! the 16 SGX TCB component SVNs, PCE SVN, CPUSVN and the SGX type. Layout per Intel's
//! *SGX PCK Certificate and Certificate Revocation List Profile Specification*.

use crate::error::Error;
use x509_parser::der_parser::ber::BerObject;
use x509_parser::der_parser::parse_der;

/// What a PCK certificate says about its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckExtension {
    /// PPID (encrypted-free platform provisioning id).
    pub ppid: Vec<u8>,
    /// SGX TCB component SVNs 1..=16.
    pub sgx_components: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
    /// CPUSVN.
    pub cpu_svn: [u8; 16],
    /// PCE ID.
    pub pce_id: [u8; 2],
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// SGX type (0 standard, 1 scalable, 2 scalable with integrity).
    pub sgx_type: u32,
}

/// The DER contents of OID 1.2.840.113741.1.13.1; its children append one byte per arc
/// (every arc Intel defines here is below 128). Compared as bytes: no OID strings.
const BASE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];

impl PckExtension {
    /// Parses the DER value of the extension.
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let (rest, obj) = parse_der(der).map_err(|_| Error::MalformedPckExtension("not DER"))?;
        if !rest.is_empty() {
            return Err(Error::MalformedPckExtension("trailing bytes"));
        }
        let mut ppid = None;
        let mut tcb = None;
        let mut pce_id = None;
        let mut fmspc = None;
        let mut sgx_type = None;
        for (oid, value) in pairs(&obj)? {
            match oid.strip_prefix(BASE) {
                Some([1]) => ppid = Some(octets(value)?.to_vec()),
                Some([2]) => tcb = Some(parse_tcb(value)?),
                Some([3]) => pce_id = Some(fixed::<2>(value)?),
                Some([4]) => fmspc = Some(fixed::<6>(value)?),
                Some([5]) => {
                    sgx_type = Some(
                        value
                            .as_u32()
                            .map_err(|_| Error::MalformedPckExtension("SGX type"))?,
                    )
                }
                _ => {}
            }
        }
        let (sgx_components, pce_svn, cpu_svn) =
            tcb.ok_or(Error::MalformedPckExtension("no TCB"))?;
        Ok(Self {
            ppid: ppid.ok_or(Error::MalformedPckExtension("no PPID"))?,
            sgx_components,
            pce_svn,
            cpu_svn,
            pce_id: pce_id.ok_or(Error::MalformedPckExtension("no PCE ID"))?,
            fmspc: fmspc.ok_or(Error::MalformedPckExtension("no FMSPC"))?,
            sgx_type: sgx_type.unwrap_or(0),
        })
    }
}

/// The (OID contents, value) pairs of a SEQUENCE OF SEQUENCE { OID, value }.
fn pairs<'a, 'b>(obj: &'b BerObject<'a>) -> Result<Vec<(&'b [u8], &'b BerObject<'a>)>, Error> {
    let seq = obj
        .as_sequence()
        .map_err(|_| Error::MalformedPckExtension("not a sequence"))?;
    seq.iter()
        .map(|item| {
            let inner = item
                .as_sequence()
                .map_err(|_| Error::MalformedPckExtension("entry is not a sequence"))?;
            match inner.as_slice() {
                [oid, value] => Ok((
                    oid.as_oid()
                        .map_err(|_| Error::MalformedPckExtension("entry without OID"))?
                        .as_bytes(),
                    value,
                )),
                _ => Err(Error::MalformedPckExtension("entry is not a pair")),
            }
        })
        .collect()
}

fn octets<'a>(v: &BerObject<'a>) -> Result<&'a [u8], Error> {
    v.as_slice()
        .map_err(|_| Error::MalformedPckExtension("expected OCTET STRING"))
}

fn fixed<const N: usize>(v: &BerObject<'_>) -> Result<[u8; N], Error> {
    octets(v)?
        .try_into()
        .map_err(|_| Error::MalformedPckExtension("OCTET STRING of the wrong length"))
}

type Tcb = ([u8; 16], u16, [u8; 16]);

fn parse_tcb(v: &BerObject<'_>) -> Result<Tcb, Error> {
    let mut comps = [None::<u8>; 16];
    let mut pce_svn = None;
    let mut cpu_svn = None;
    for (oid, value) in pairs(v)? {
        let Some(&[2, n]) = oid.strip_prefix(BASE) else {
            continue;
        };
        let n = usize::from(n);
        let int = || {
            value
                .as_u32()
                .map_err(|_| Error::MalformedPckExtension("TCB component is not an integer"))
        };
        match n {
            1..=16 => {
                let svn = u8::try_from(int()?)
                    .map_err(|_| Error::MalformedPckExtension("TCB component > 255"))?;
                if let Some(slot) = comps.get_mut(n - 1) {
                    *slot = Some(svn);
                }
            }
            17 => {
                pce_svn = Some(
                    u16::try_from(int()?)
                        .map_err(|_| Error::MalformedPckExtension("PCE SVN > 65535"))?,
                )
            }
            18 => cpu_svn = Some(fixed::<16>(value)?),
            _ => {}
        }
    }
    let mut out = [0u8; 16];
    for (o, c) in out.iter_mut().zip(comps) {
        *o = c.ok_or(Error::MalformedPckExtension("missing TCB component"))?;
    }
    Ok((
        out,
        pce_svn.ok_or(Error::MalformedPckExtension("no PCE SVN"))?,
        cpu_svn.ok_or(Error::MalformedPckExtension("no CPUSVN"))?,
    ))
}
