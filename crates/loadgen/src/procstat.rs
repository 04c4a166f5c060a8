//! CPU time and memory of a process from `/proc` (the server under test, or ourselves).

use anyhow::{Context, bail};

/// Cumulative CPU time of a process (all threads), in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// User time, µs.
    pub user_us: u64,
    /// System (kernel) time, µs.
    pub sys_us: u64,
}

impl CpuTimes {
    /// User + system, µs.
    pub fn total_us(&self) -> u64 {
        self.user_us + self.sys_us
    }

    /// `self − earlier` (saturating).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user_us: self.user_us.saturating_sub(earlier.user_us),
            sys_us: self.sys_us.saturating_sub(earlier.sys_us),
        }
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|&v| v > 0)
        .unwrap_or(100)
}

/// Parses the utime (field 14) and stime (field 15) of a `/proc/PID/stat` line, in ticks.
/// The command name (field 2) is in parentheses and may contain spaces and ')', so fields
/// are counted from the last ')'.
pub fn parse_stat_ticks(stat: &str) -> anyhow::Result<(u64, u64)> {
    let rest = stat
        .rfind(')')
        .map(|p| &stat[p + 1..])
        .context("no ')' in /proc/PID/stat")?;
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let mut f = rest.split_whitespace().skip(11);
    let utime = f.next().context("no utime")?.parse()?;
    let stime = f.next().context("no stime")?.parse()?;
    Ok((utime, stime))
}

/// CPU time of process `pid` (`None`: this process).
pub fn cpu_times(pid: Option<u32>) -> anyhow::Result<CpuTimes> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let (u, s) = parse_stat_ticks(&stat)?;
    let tck = clock_ticks_per_second();
    Ok(CpuTimes {
        user_us: u * 1_000_000 / tck,
        sys_us: s * 1_000_000 / tck,
    })
}

/// A `kB` field (VmRSS, VmHWM, …) of `/proc/PID/status`, in kB.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Memory of a process from `/proc/PID/status`, in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size (VmRSS).
    pub rss_kb: u64,
    /// Peak resident set size (VmHWM).
    pub hwm_kb: u64,
    /// Anonymous resident memory (RssAnon): heap, stacks.
    pub anon_kb: u64,
    /// File-backed resident memory (RssFile): binary, libraries, mmap-ed files (e.g. an
    /// SQLite database opened with `mmap_size`). Page-cache pages, reclaimable.
    pub file_kb: u64,
}

/// Memory of process `pid`.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let Some(rss_kb) = parse_status_kb(&status, "VmRSS") else {
        bail!("no VmRSS in {path}");
    };
    Ok(Memory {
        rss_kb,
        hwm_kb: parse_status_kb(&status, "VmHWM").unwrap_or(rss_kb),
        anon_kb: parse_status_kb(&status, "RssAnon").unwrap_or(0),
        file_kb: parse_status_kb(&status, "RssFile").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let line = "1234 (free radius) x) S 1 1234 1234 0 -1 4194560 2360 0 0 0 517 211 0 0 20 0 5 0 12345 1000 2000";
        assert_eq!(parse_stat_ticks(line).unwrap(), (517, 211));
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tfreeradius\nVmHWM:\t  748800 kB\nVmRSS:\t  731000 kB\n";
        assert_eq!(parse_status_kb(s, "VmRSS"), Some(731_000));
        assert_eq!(parse_status_kb(s, "VmHWM"), Some(748_800));
        assert_eq!(parse_status_kb(s, "VmSwap"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let t = cpu_times(None).unwrap();
        assert!(t.total_us() < 1_000_000_000);
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss_kb > 0 && m.hwm_kb >= m.rss_kb);
        assert!(m.anon_kb + m.file_kb <= m.rss_kb);
    }
}
