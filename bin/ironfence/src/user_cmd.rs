//! `ironfence user`: the captive portal's local users (store table `password`).
//!
//! - `user add <pid>`: the password comes from `--password-file FILE` (first line),
//!   `--password-stdin` (one line), or the terminal prompt (no echo); stored as argon2id.
//! - `user import <csv>`: a PacketFence `password` table export (header row naming `pid`,
//!   `password`, and optionally `valid_from`, `expiration`). Its bcrypt hashes (`$2a$`,
//!   `$2b$`, `$2y$`) are kept as they are, so users log in with their PacketFence password.
//!   Rows whose password is no supported hash are refused (line number given) unless
//!   `--plaintext` says the export holds clear-text passwords (PacketFence's
//!   `hash_passwords = plaintext`): those are hashed with argon2id on import.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ironfence_config::Config;
use ironfence_config::authentication::parse_date;
use ironfence_store::Store;
use ironfence_store::portal::LocalUser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create or replace a local user (its password is asked, or read from a file or stdin).
    Add(AddArgs),
    /// Import users from a PacketFence `password` table export (CSV with a header row).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The user name (PacketFence pid).
    pid: String,
    /// File whose first line is the password (keep it mode 0600).
    #[arg(long, conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// First day the account may log in (YYYY-MM-DD, UTC).
    #[arg(long)]
    valid_from: Option<String>,
    /// Day the account stops working (YYYY-MM-DD, UTC).
    #[arg(long)]
    expiration: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The CSV file.
    csv: PathBuf,
    /// The password column holds clear text (hash each with argon2id).
    #[arg(long)]
    plaintext: bool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) async fn run(config: &Config, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    // Read everything from the operator before touching the database.
    let users = match cmd {
        UserCommand::Add(args) => vec![add_user(args)?],
        UserCommand::Import(args) => {
            let text = std::fs::read_to_string(&args.csv)
                .with_context(|| format!("reading {}", args.csv.display()))?;
            let (users, refused) = parse_export(&text, args.plaintext)?;
            for r in &refused {
                eprintln!("{}:{r}", args.csv.display());
            }
            if !refused.is_empty() {
                bail!(
                    "{} row(s) refused, nothing imported: fix them (or pass --plaintext if the export holds clear-text passwords)",
                    refused.len()
                );
            }
            users
        }
    };
    let store = Store::open(&ironfence_server::store_config(config))
        .await
        .context("opening the store")?;
    let t = now();
    for u in &users {
        store
            .upsert_local_user(u, t)
            .await
            .with_context(|| format!("storing user {}", u.pid))?;
    }
    store.close().await;
    match users.as_slice() {
        [one] => outln!("user {} saved", one.pid),
        many => outln!("{} users imported", many.len()),
    }
    Ok(ExitCode::SUCCESS)
}

fn day(arg: Option<&str>, what: &str) -> anyhow::Result<Option<i64>> {
    arg.map(|v| parse_date(v).with_context(|| format!("--{what} {v:?} is not a date YYYY-MM-DD")))
        .transpose()
}

fn add_user(args: AddArgs) -> anyhow::Result<LocalUser> {
    use std::io::{BufRead, IsTerminal};
    if args.pid.is_empty() || args.pid.len() > 255 || args.pid.chars().any(char::is_control) {
        bail!("the user name must be 1-255 printable characters");
    }
    let password = if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?;
        text.lines().next().unwrap_or("").to_string()
    } else if args.password_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = crate::cluster_cmd::prompt_password(&format!("password for {}: ", args.pid))?;
        let again = crate::cluster_cmd::prompt_password("again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    if password.len() < 8 {
        bail!("the password is shorter than 8 characters");
    }
    let hash = ironfence_portal::password::hash(&password).context("hashing the password")?;
    Ok(LocalUser {
        pid: args.pid,
        password: hash,
        nt_hash: Some(ironfence_eap::mschapv2::nt_password_hash(&password)),
        valid_from: day(args.valid_from.as_deref(), "valid-from")?,
        expiration: day(args.expiration.as_deref(), "expiration")?,
    })
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// PacketFence datetimes: `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`; `0000-00-00…`, empty and
/// `NULL` mean none.
fn pf_datetime(v: &str) -> Result<Option<i64>, String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("null") || v.starts_with("0000-00-00") {
        return Ok(None);
    }
    let (date, time) = v.split_once(' ').unwrap_or((v, "00:00:00"));
    let d = parse_date(date).ok_or_else(|| format!("{v:?} is not a date"))?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>());
    let (h, m, s) = (hms.next(), hms.next(), hms.next());
    match (h, m, s.unwrap_or(Ok(0))) {
        (Some(Ok(h)), Some(Ok(m)), Ok(s)) if h < 24 && m < 60 && s < 61 => {
            Ok(Some(d + h * 3600 + m * 60 + s))
        }
        _ => Err(format!("{v:?} is not a time")),
    }
}

/// The users of an export, and the refused rows as `line: reason`.
fn parse_export(text: &str, plaintext: bool) -> anyhow::Result<(Vec<LocalUser>, Vec<String>)> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("the file is empty: expected a header row naming pid and password");
    };
    let header: Vec<String> = csv_fields(header)
        .into_iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(pid_col), Some(pw_col)) = (col("pid"), col("password")) else {
        bail!(
            "the header row must name the columns pid and password (found: {})",
            header.join(",")
        );
    };
    let (from_col, exp_col) = (col("valid_from"), col("expiration"));
    let mut users = Vec::new();
    let mut refused = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let f = csv_fields(line);
        let get = |c: Option<usize>| c.and_then(|c| f.get(c)).map(|s| s.trim()).unwrap_or("");
        let pid = get(Some(pid_col));
        let pw = get(Some(pw_col));
        if pid.is_empty() || pw.is_empty() {
            refused.push(format!("{n}: empty pid or password"));
            continue;
        }
        // A hash imported as is cannot give the NT hash PEAP/MSCHAPv2 needs: such a
        // user logs in on the portal and over EAP-TTLS/PAP only.
        let (password, nt_hash) = if ironfence_portal::password::is_supported(pw) {
            (pw.to_string(), None)
        } else if plaintext {
            (
                ironfence_portal::password::hash(pw).context("hashing a password")?,
                Some(ironfence_eap::mschapv2::nt_password_hash(pw)),
            )
        } else {
            refused.push(format!(
                "{n}: user {pid}: the password is not a bcrypt or argon2 hash"
            ));
            continue;
        };
        let (valid_from, expiration) = match (pf_datetime(get(from_col)), pf_datetime(get(exp_col)))
        {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                refused.push(format!("{n}: user {pid}: {e}"));
                continue;
            }
        };
        users.push(LocalUser {
            pid: pid.to_string(),
            password,
            nt_hash,
            valid_from,
            expiration,
        });
    }
    Ok((users, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packetfence_export_is_parsed() {
        let bcrypt = "$2y$04$abcdefghijklmnopqrstuu5Ht1Cq3bnfpXFxWeHZW1qPV5rZyV7cm";
        let text = format!(
            "pid,password,valid_from,expiration,access_duration,category\n\
             alice,{bcrypt},2024-01-01 00:00:00,2030-01-01 12:30:00,1D,\n\
             \"bob, jr\",{bcrypt},0000-00-00 00:00:00,NULL,,\n\
             carol,cleartext,,,,\n\
             dave,{bcrypt},yesterday,,,\n"
        );
        let (users, refused) = parse_export(&text, false).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].pid, "alice");
        assert_eq!(users[0].valid_from, Some(1_704_067_200));
        assert_eq!(
            users[0].expiration,
            Some(1_893_456_000 + 12 * 3600 + 30 * 60)
        );
        assert_eq!(
            (
                users[1].pid.as_str(),
                users[1].valid_from,
                users[1].expiration
            ),
            ("bob, jr", None, None)
        );
        assert_eq!(users[1].password, bcrypt, "bcrypt kept as is");
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].starts_with("4: user carol"), "{refused:?}");
        assert!(refused[1].starts_with("5: user dave"), "{refused:?}");
        let (users, _) = parse_export(&text, true).unwrap();
        let carol = users.iter().find(|u| u.pid == "carol").unwrap();
        assert!(ironfence_portal::password::verify(
            &carol.password,
            "cleartext"
        ));
        assert!(parse_export("user,pass\nx,y\n", false).is_err());
    }
}
