//! `ironfence audit <mac>`: the RADIUS audit records of one device, newest last.
//!
//! On a single server the local log (`<state_dir>/audit/`) is read directly, whether or not
//! the daemon runs. On a cluster member every server keeps its own log: all of them are asked
//! at once through the node-to-node API (short timeout), this server's own files are read
//! locally, and the answers are merged by time. A member that does not answer is named on
//! stderr and the exit code is 1 (the list is incomplete).

use anyhow::anyhow;
use clap::Args;
use ironfence_audit::{AuditRecord, Query};
use ironfence_config::Config;
use ironfence_core::Mac;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// How long each peer gets to answer (all are asked at once).
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The device's MAC address (any common spelling: aa:bb:cc:dd:ee:ff, aabb.ccdd.eeff, …).
    mac: String,
    /// Only records at or after this time: RFC 3339 (`2026-12-01T10:00:00Z`; no zone = UTC;
    /// a bare date = its midnight) or a duration ago (`1h`, `30m`, `2d`, `1h30m`).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// The newest N records (at least 1).
    #[arg(long, default_value_t = 100, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    limit: usize,
    /// One JSON object per record and line (with `time` in RFC 3339 and, in a cluster, `server`).
    #[arg(long)]
    json: bool,
}

/// A time argument: RFC 3339 (weak: no zone means UTC, a bare date its midnight) or a
/// duration before `now_us`. Pure.
pub(crate) fn parse_time(s: &str, now_us: i64) -> Result<i64, String> {
    let s = s.trim();
    let stamp = if s.len() == 10 && s.as_bytes()[4] == b'-' {
        format!("{s}T00:00:00")
    } else {
        s.to_string()
    };
    if let Ok(t) = humantime::parse_rfc3339_weak(&stamp) {
        return Ok(match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        });
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(now_us.saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))),
        Err(_) => Err(format!(
            "{s:?} is neither a time (2026-12-01T10:00:00Z, 2026-12-01) nor a duration ago (1h, 30m, 2d)"
        )),
    }
}

pub(crate) fn fmt_time_us(t: i64) -> String {
    let at = if t >= 0 {
        UNIX_EPOCH + Duration::from_micros(t as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(t.unsigned_abs())
    };
    humantime::format_rfc3339_micros(at).to_string()
}

pub(crate) async fn run(config: &Config, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let mac = Mac::parse(&args.mac).map_err(|e| anyhow!("{e}"))?;
    let now = ironfence_audit::now_us();
    let parse = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(|s| parse_time(s, now).map_err(|e| anyhow!("--{what}: {e}")))
            .transpose()
    };
    let query = Query {
        mac: Some(mac),
        since_us: parse(&args.since, "since")?,
        until_us: parse(&args.until, "until")?,
        limit: Some(args.limit),
    };
    let ironfence_server::Gathered {
        records: merged,
        missing,
        in_cluster,
    } = ironfence_server::query_cluster(config, query, PEER_TIMEOUT).await;
    if args.json {
        for (server, r) in &merged {
            let mut v = serde_json::to_value(r)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("time".into(), fmt_time_us(r.time_us).into());
                if in_cluster {
                    o.insert("server".into(), server.clone().into());
                }
            }
            outln!("{v}");
        }
    } else {
        print_table(&merged, in_cluster);
        let shown = merged.len();
        let more = if shown == args.limit {
            format!(" (the newest {shown}; --limit to see more)")
        } else {
            String::new()
        };
        outln!("{shown} record(s) for {mac}{more}");
    }
    for (name, why) in &missing {
        eprintln!("warning: {name} did not answer, its records are missing: {why}");
    }
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(rows: &[(String, AuditRecord)], in_cluster: bool) {
    if rows.is_empty() {
        return;
    }
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let server_head = if in_cluster { "SERVER       " } else { "" };
    outln!(
        "{:<27} {server_head}{:<6} {:<8} {:<20} {:<6} {:<12} {:<15} {:<12} USER-NAME",
        "TIME",
        "TYPE",
        "OUTCOME",
        "REASON",
        "VLAN",
        "ROLE",
        "NAS-IP",
        "PORT"
    );
    for (server, r) in rows {
        let server = if in_cluster {
            format!("{server:<12} ")
        } else {
            String::new()
        };
        outln!(
            "{:<27} {server}{:<6} {:<8} {:<20} {:<6} {:<12} {:<15} {:<12} {}",
            fmt_time_us(r.time_us),
            r.request_type.as_str(),
            r.outcome,
            r.reason,
            dash(&r.vlan),
            dash(&r.role),
            r.nas_ip,
            dash(&r.nas_port),
            dash(&r.user_name)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_633_600_000_000; // 2025-12-02T00:00:00Z

    #[test]
    fn time_arguments() {
        let cases: &[(&str, Result<i64, ()>)] = &[
            ("2025-12-02T00:00:00Z", Ok(NOW)),
            ("2025-12-02T00:00:00", Ok(NOW)),
            ("2025-12-02", Ok(NOW)),
            ("2025-12-02T00:00:01.5Z", Ok(NOW + 1_500_000)),
            ("1h", Ok(NOW - 3_600_000_000)),
            ("1h30m", Ok(NOW - 5_400_000_000)),
            ("2d", Ok(NOW - 172_800_000_000)),
            ("yesterday", Err(())),
            ("", Err(())),
        ];
        for (s, want) in cases {
            assert_eq!(parse_time(s, NOW).map_err(|_| ()), *want, "{s:?}");
        }
        assert_eq!(fmt_time_us(NOW + 5), "2025-12-02T00:00:00.000005Z");
    }
}
