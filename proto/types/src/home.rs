//! Where Phalanx keeps its data when no path is given: `$PHALANX_HOME`, else
//! `~/.phalanx`. Never the working directory, so commands typed inside a checkout write
//! nothing into it. Paths written as `~/…` in configuration files and flags are read
//! against the user's home the same way.

use std::path::{Path, PathBuf};

/// The environment variable that moves every default data directory.
pub const ENV: &str = "PHALANX_HOME";

/// `$PHALANX_HOME` if set and not empty, else `$HOME/.phalanx`; without a home
/// directory, `.phalanx` under the working directory.
pub fn data_home() -> PathBuf {
    from(std::env::var_os(ENV), std::env::var_os("HOME"))
}

/// The default data directory of one part: `data_home()/<part>`.
pub fn data_dir(part: &str) -> PathBuf {
    data_home().join(part)
}

/// `~` and `~/x` read against `$HOME`; any other path unchanged (`~user` too: nothing
/// here looks up other users).
pub fn expand(path: &Path) -> PathBuf {
    expand_with(path, std::env::var_os("HOME"))
}

fn from(phalanx_home: Option<std::ffi::OsString>, home: Option<std::ffi::OsString>) -> PathBuf {
    let home = home.filter(|h| !h.is_empty());
    match phalanx_home.filter(|p| !p.is_empty()) {
        Some(p) => expand_with(Path::new(&p), home),
        None => home.map_or_else(
            || PathBuf::from(".phalanx"),
            |h| PathBuf::from(h).join(".phalanx"),
        ),
    }
}

fn expand_with(path: &Path, home: Option<std::ffi::OsString>) -> PathBuf {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return path.to_owned();
    };
    match path.strip_prefix("~") {
        Ok(rest) => PathBuf::from(home).join(rest),
        Err(_) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phalanx_home_wins_then_home_then_the_working_directory() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        assert_eq!(from(s("/srv/p"), s("/home/u")), PathBuf::from("/srv/p"));
        assert_eq!(from(s("~/p"), s("/home/u")), PathBuf::from("/home/u/p"));
        assert_eq!(from(s(""), s("/home/u")), PathBuf::from("/home/u/.phalanx"));
        assert_eq!(from(None, s("/home/u")), PathBuf::from("/home/u/.phalanx"));
        assert_eq!(from(None, None), PathBuf::from(".phalanx"));
    }

    #[test]
    fn only_a_leading_tilde_component_is_the_home() {
        let home = || Some(std::ffi::OsString::from("/home/u"));
        let e = |p: &str| expand_with(Path::new(p), home());
        assert_eq!(e("~/.phalanx/ca"), PathBuf::from("/home/u/.phalanx/ca"));
        assert_eq!(e("~"), PathBuf::from("/home/u"));
        assert_eq!(e("~other/x"), PathBuf::from("~other/x"));
        assert_eq!(e("a/~/b"), PathBuf::from("a/~/b"));
        assert_eq!(e("/abs"), PathBuf::from("/abs"));
        assert_eq!(
            expand_with(Path::new("~/x"), None),
            PathBuf::from("~/x"),
            "no home: left as written"
        );
    }
}
