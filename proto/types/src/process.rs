//! Facts about the running process, for load generators and metrics.

/// This process's peak resident set size (`VmHWM`), MiB; `None` where the kernel does
/// not say (not Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds (user and system) this process has used so far; `None` where the
/// kernel does not say (not Linux).
pub fn cpu_seconds() -> Option<f64> {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU seconds (user and system) used so far by this process's threads whose name
/// starts with `prefix` (0 where the kernel does not say).
pub fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| stat_cpu_seconds(&std::fs::read_to_string(t.path().join("stat")).ok()?))
        .sum()
}

/// `utime + stime` of a `/proc/…/stat` line, in seconds.
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    // After the parenthesised name (which may hold spaces): state is field 3 of the
    // line, utime 14 and stime 15, so 11 and 12 of the rest.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_is_read_after_the_name() {
        let line = "42 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(super::stat_cpu_seconds(line), Some(3.0));
        assert_eq!(super::stat_cpu_seconds("42 (a) S 1 2"), None);
        assert_eq!(super::stat_cpu_seconds("no name"), None);
        if cfg!(target_os = "linux") {
            assert!(super::cpu_seconds().is_some());
        }
    }

    #[test]
    fn a_running_process_has_a_peak() {
        if cfg!(target_os = "linux") {
            assert!(super::peak_rss_mib().is_some_and(|m| m > 0.0));
        }
    }
}
