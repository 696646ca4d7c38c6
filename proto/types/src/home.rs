//! Where Phalanx keeps its data when no path is given: `$PHALANX_HOME`, else
//! `~/.phalanx`. Never the working directory, so commands typed inside a checkout write
//! nothing into it. Paths written as `~/…` in configuration files and flags are read
//! against the user's home the same way.

use std::path::{Path, PathBuf};

/// The environment variable that moves every default data directory.
pub const ENV: &str = "PHALANX_HOME";

/// `$PHALANX_HOME` if set and not empty (made absolute), else `.phalanx` in the user's
/// home; without any home, `phalanx` in the temporary directory. Never the working
/// directory.
pub fn data_home() -> PathBuf {
    from(std::env::var_os(ENV), home(), std::env::current_dir().ok())
}

/// The default data directory of one part: `data_home()/<part>`.
pub fn data_dir(part: &str) -> PathBuf {
    data_home().join(part)
}

/// `~` and `~/x` read against the user's home; any other path unchanged (`~user` too:
/// nothing here looks up other users).
pub fn expand(path: &Path) -> PathBuf {
    expand_with(path, home())
}

/// `$HOME`, else the system's record of the user's home.
fn home() -> Option<PathBuf> {
    #[allow(
        deprecated,
        reason = "the std function, whose HOME handling is what is wanted"
    )]
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(std::env::home_dir)
}

fn from(
    phalanx_home: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
) -> PathBuf {
    match phalanx_home.filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = expand_with(Path::new(&p), home);
            match cwd {
                Some(cwd) if p.is_relative() => cwd.join(p),
                _ => p,
            }
        }
        None => home.map_or_else(
            || std::env::temp_dir().join("phalanx"),
            |h| h.join(".phalanx"),
        ),
    }
}

fn expand_with(path: &Path, home: Option<PathBuf>) -> PathBuf {
    let Some(home) = home else {
        return path.to_owned();
    };
    match path.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phalanx_home_wins_then_home_and_never_the_working_directory() {
        let s = |v: &str| Some(std::ffi::OsString::from(v));
        let home = || Some(PathBuf::from("/home/u"));
        let cwd = || Some(PathBuf::from("/work/checkout"));
        assert_eq!(from(s("/srv/p"), home(), cwd()), PathBuf::from("/srv/p"));
        assert_eq!(from(s("~/p"), home(), cwd()), PathBuf::from("/home/u/p"));
        assert_eq!(
            from(s("rel"), home(), cwd()),
            PathBuf::from("/work/checkout/rel"),
            "made absolute: a printed path works from anywhere"
        );
        assert_eq!(
            from(s(""), home(), cwd()),
            PathBuf::from("/home/u/.phalanx")
        );
        assert_eq!(from(None, home(), cwd()), PathBuf::from("/home/u/.phalanx"));
        let nowhere = from(None, None, cwd());
        assert!(nowhere.is_absolute() && !nowhere.starts_with("/work/checkout"));
    }

    #[test]
    fn only_a_leading_tilde_component_is_the_home() {
        let home = || Some(PathBuf::from("/home/u"));
        let e = |p: &str| expand_with(Path::new(p), home());
        assert_eq!(e("~/.phalanx/ca"), PathBuf::from("/home/u/.phalanx/ca"));
        assert_eq!(e("~"), PathBuf::from("/home/u"));
        assert_eq!(e("~other/x"), PathBuf::from("~other/x"));
        assert_eq!(e("a/~/b"), PathBuf::from("a/~/b"));
        assert_eq!(e("/abs"), PathBuf::from("/abs"));
        assert_eq!(
            expand_with(Path::new("~/x"), None),
            PathBuf::from("~/x"),
            "no home at all: left as written"
        );
    }
}
