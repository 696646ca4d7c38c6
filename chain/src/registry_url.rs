//! How every config and command names a registry: one syntax, one parser.
//!
//! | form | registry |
//! |---|---|
//! | `ledger+http://HOST:PORT` (or plain `http(s)://HOST:PORT`) | the embedded ledger's node (gRPC) |
//! | `evm+http(s)://HOST:PORT/PATH#0xADDRESS` | the Solidity registry at `ADDRESS`, through that JSON-RPC node |
//!
//! The address is 40 hex digits (checksummed or not); nothing else may follow it. The
//! URL names where to ask, never what to trust: a ledger's client still pins its
//! genesis, an EVM verifier its chain, address and block.

use std::fmt;
use std::str::FromStr;

/// A registry (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryUrl {
    /// The embedded ledger's node.
    Ledger {
        /// Its gRPC endpoint (`http(s)://…`).
        url: String,
    },
    /// A Solidity registry on an EVM chain.
    Evm {
        /// The chain node's JSON-RPC endpoint (`http(s)://…`).
        rpc: String,
        /// The registry contract's address.
        address: [u8; 20],
    },
}

/// Why a registry URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry {given:?}: {why} (ledger+http://HOST:PORT, or evm+http://HOST:PORT#0xADDRESS)")]
pub struct RegistryUrlError {
    /// The URL as [`redacted`] shows it.
    given: String,
    why: &'static str,
}

/// `url` as errors show it: its kind, scheme, host and port (a path or query often
/// carries an API key, a user part a password).
pub fn redacted(url: &str) -> String {
    let url = url.trim();
    let (kind, url) = match url.split_once('+') {
        Some((k, rest)) if !k.contains(['/', ':']) => (format!("{k}+"), rest),
        _ => (String::new(), url),
    };
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    format!("{kind}{scheme}://{host}")
}

/// `message` with every spelling of `url` (as given, and as its parts) shown as
/// [`redacted`] shows it: for errors of a client that may quote the URL it was given.
pub fn scrub(message: &str, url: &str) -> String {
    // As given, without its kind, without its contract; and as it reads back.
    let given = url.trim();
    let bare = given
        .strip_prefix("evm+")
        .or_else(|| given.strip_prefix("ledger+"))
        .unwrap_or(given);
    let node = bare.split('#').next().unwrap_or(bare);
    let mut spellings = vec![given.to_owned(), bare.to_owned(), node.to_owned()];
    if let Ok(u) = url.parse::<RegistryUrl>() {
        spellings.push(u.to_string());
    }
    spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_owned();
    for s in spellings.iter().filter(|s| !s.is_empty()) {
        let inner = s
            .strip_prefix("evm+")
            .or_else(|| s.strip_prefix("ledger+"))
            .unwrap_or(s);
        out = out.replace(s.as_str(), &redacted(inner));
    }
    out
}

/// `message` with every `http(s)://…` URL in it shown as [`redacted`] shows it: for a
/// client library's errors, which quote the URL they failed on (a node's URL often
/// carries an API key in its path or query).
pub fn scrub_urls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    // Schemes in any case (ASCII lowering keeps every byte offset).
    while let Some(at) = {
        let lower = rest.to_ascii_lowercase();
        ["http://", "https://"]
            .iter()
            .filter_map(|p| lower.find(p))
            .min()
    } {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // Up to what ends a URL quoted in text: a space, a closing quote, parenthesis
        // or angle bracket (a comma may sit inside a query).
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '>'))
            .unwrap_or(tail.len());
        out.push_str(&redacted(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl FromStr for RegistryUrl {
    type Err = RegistryUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| RegistryUrlError {
            given: redacted(s),
            why,
        };
        let s = s.trim();
        let http = |u: &str| {
            let rest = u
                .strip_prefix("http://")
                .or_else(|| u.strip_prefix("https://"))
                .ok_or_else(|| bad("not an http(s) URL"))?;
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(bad("no host"));
            }
            Ok(u.to_owned())
        };
        if let Some(rest) = s.strip_prefix("evm+") {
            let (rpc, address) = rest
                .split_once('#')
                .ok_or_else(|| bad("an EVM registry names its contract: #0xADDRESS"))?;
            let address = crate::evm_proof::parse_address(address)
                .ok_or_else(|| bad("the contract address is not 40 hex digits"))?;
            if rpc.starts_with("https://") {
                return Err(bad(
                    "no TLS in the EVM client yet: use http:// on a private network",
                ));
            }
            return Ok(Self::Evm {
                rpc: http(rpc)?,
                address,
            });
        }
        let url = s.strip_prefix("ledger+").unwrap_or(s);
        if url.contains('#') {
            return Err(bad("a ledger's URL names no contract"));
        }
        if url.contains('+') && url.split("://").next().is_some_and(|p| p.contains('+')) {
            return Err(bad("unknown kind of registry"));
        }
        Ok(Self::Ledger { url: http(url)? })
    }
}

impl fmt::Display for RegistryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ledger { url } => write!(f, "ledger+{url}"),
            Self::Evm { rpc, address } => write!(f, "evm+{rpc}#0x{}", crate::hex(address)),
        }
    }
}

#[cfg(test)]
mod scrub_tests {
    use super::scrub_urls;

    /// A client error quoting a node's URL with a key in its path and query keeps only
    /// the scheme, host and port.
    #[test]
    fn urls_in_messages_lose_paths_queries_and_users() {
        let m = "error sending request for url (https://user:pw@rpc.example:8545/v2/SECRETKEY?k=SECRET,SECRET): timed out, then HTTP://h/SECRET";
        let s = scrub_urls(m);
        assert!(!s.contains("SECRET") && !s.contains("pw"), "{s}");
        assert!(
            s.contains("https://rpc.example:8545") && s.contains("HTTP://h"),
            "{s}"
        );
        assert_eq!(scrub_urls("no url here"), "no url here");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_kinds_read_and_print_back() {
        let a = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
        for (given, want) in [
            (
                "http://127.0.0.1:7300",
                RegistryUrl::Ledger {
                    url: "http://127.0.0.1:7300".into(),
                },
            ),
            (
                "ledger+https://ledger.example:443",
                RegistryUrl::Ledger {
                    url: "https://ledger.example:443".into(),
                },
            ),
            (
                &format!(
                    "evm+http://127.0.0.1:8545#{}",
                    a.to_uppercase().replace("0X", "0x")
                ),
                RegistryUrl::Evm {
                    rpc: "http://127.0.0.1:8545".into(),
                    address: crate::evm_proof::parse_address(a).unwrap(),
                },
            ),
        ] {
            let read: RegistryUrl = given.parse().unwrap();
            assert_eq!(read, want, "{given}");
            assert_eq!(read.to_string().parse::<RegistryUrl>().unwrap(), read);
        }
        assert_eq!(
            "evm+http://rpc.example/v1/key#5fbdb2315678afecb367f032d93f642f64180aa3"
                .parse::<RegistryUrl>()
                .unwrap()
                .to_string(),
            format!("evm+http://rpc.example/v1/key#{a}")
        );
    }

    #[test]
    fn anything_else_is_refused_by_name() {
        for (given, why) in [
            ("", "not an http(s) URL"),
            ("127.0.0.1:7300", "not an http(s) URL"),
            ("http://", "no host"),
            ("evm+http://127.0.0.1:8545", "names its contract"),
            ("evm+http://127.0.0.1:8545#0x12", "40 hex digits"),
            (
                "evm+http://127.0.0.1:8545#0x5fbdb2315678afecb367f032d93f642f64180aa3/x",
                "40 hex digits",
            ),
            (
                "evm+ftp://h#0x5fbdb2315678afecb367f032d93f642f64180aa3",
                "not an http(s) URL",
            ),
            (
                "ledger+http://h:1#0x5fbdb2315678afecb367f032d93f642f64180aa3",
                "names no contract",
            ),
            ("solana+http://h:1", "unknown kind"),
            (
                "evm+https://h/#0x5fbdb2315678afecb367f032d93f642f64180aa3",
                "no TLS",
            ),
        ] {
            let e = given.parse::<RegistryUrl>().unwrap_err().to_string();
            assert!(e.contains(why), "{given:?}: {e}");
        }
    }

    #[test]
    fn urls_in_errors_show_no_path_query_or_password() {
        assert_eq!(
            redacted("https://user:pw@rpc.example:8545/v3/KEY?x=1"),
            "https://rpc.example:8545"
        );
        assert_eq!(
            redacted("evm+http://rpc.example/v3/KEY#0xab"),
            "evm+http://rpc.example"
        );
        let e = "evm+http://rpc.example/v3/SECRET"
            .parse::<RegistryUrl>()
            .unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        for node in [
            "http://rpc.example/v3/SECRET",
            "evm+http://rpc.example/v3/SECRET#0x5fbdb2315678afecb367f032d93f642f64180aa3",
        ] {
            let m = scrub(
                &format!(
                    "from {node}: error sending request for url (http://rpc.example/v3/SECRET)"
                ),
                node,
            );
            assert!(
                !m.contains("SECRET") && m.contains("http://rpc.example"),
                "{m}"
            );
        }
    }
}
