//! `ironfence admin`: the administration interface's accounts in `conf/admin.conf`.
//!
//! - `admin add <name> --role R`: the password comes from `--password-stdin` (one line) or
//!   the terminal prompt (no echo, asked twice); stored as argon2id. Weak passwords (shorter
//!   than 12 characters, `admin`, `packetfence`, `password`, …) are refused.
//! - `admin passwd <name>`, `admin remove <name>`, `admin list`.
//! - `admin totp <name>`: a new RFC 6238 secret; prints the `otpauth://` URI to scan.
//!   `--disable` turns the second factor off.
//!
//! The file is edited with its comments kept and written 0600; the token signing key
//! `conf/ssl/admin-token.key` is created when absent. In a cluster the change is on this
//! server only until it is published (`ironfence cluster sync --as-master`); the API
//! (`/api/v1/admins`) pushes it to every server itself.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ironfence_config::Document;
use ironfence_config::admin::{ACCOUNT_PREFIX, ADMIN_CONF, password_weakness, valid_account_name};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create an admin account (the password is asked, or read from stdin).
    Add(AddArgs),
    /// Change an admin account's password.
    Passwd(PasswdArgs),
    /// Delete an admin account.
    Remove(NameArg),
    /// List the admin accounts (never their password hashes).
    List,
    /// Turn the TOTP second factor on (prints the otpauth:// URI to scan) or off.
    Totp(TotpArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    name: String,
    /// administrator, operator or read-only.
    #[arg(long)]
    role: String,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    name: String,
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NameArg {
    name: String,
}

#[derive(Debug, Args)]
pub(crate) struct TotpArgs {
    name: String,
    /// Turn the second factor off.
    #[arg(long)]
    disable: bool,
}

fn load(conf_dir: &Path) -> anyhow::Result<Document> {
    let path = conf_dir.join(ADMIN_CONF);
    if path.exists() {
        Document::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        Ok(Document::new(path))
    }
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    ironfence_core::fsutil::write_atomic_with(
        path,
        bytes,
        ironfence_core::fsutil::WriteOptions {
            mode: 0o600,
            create_dirs: None,
            owner: None,
        },
    )
    .with_context(|| format!("writing {}", path.display()))
}

fn save(conf_dir: &Path, doc: &Document) -> anyhow::Result<()> {
    let path = conf_dir.join(ADMIN_CONF);
    let old = std::fs::read(&path).ok();
    write(&path, doc.to_string().as_bytes())?;
    // Refuse to leave a file the daemon would reject: checkup's view of admin.conf.
    let diags = ironfence_config::checkup(conf_dir);
    let ours: Vec<String> = diags
        .errors()
        .filter(|d| d.file.ends_with(ADMIN_CONF))
        .map(|d| d.to_string())
        .collect();
    if !ours.is_empty() {
        // Put the previous file back: the daemon must never find a file it refuses.
        match old {
            Some(bytes) => write(&path, &bytes)?,
            None => std::fs::remove_file(&path)?,
        }
        bail!(
            "{} would not be valid after the change (nothing changed):\n{}",
            path.display(),
            ours.join("\n")
        );
    }
    Ok(())
}

fn section(name: &str) -> String {
    format!("{ACCOUNT_PREFIX}{name}")
}

fn read_password(name: &str, stdin: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let password = if stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        let first = crate::cluster_cmd::prompt_password(&format!("password for {name}: "))?;
        let again = crate::cluster_cmd::prompt_password("again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    };
    if let Some(why) = password_weakness(&password) {
        bail!("the password {why}: choose a passphrase of at least 12 characters");
    }
    ironfence_portal::password::hash(&password).context("hashing the password")
}

/// Enabled administrators with a password, after the edit (`doc`).
fn administrators(doc: &Document) -> Vec<String> {
    doc.sections()
        .filter_map(|(s, _)| s.strip_prefix(ACCOUNT_PREFIX).map(|n| (s, n)))
        .filter(|(s, _)| {
            doc.get(s, "role")
                .is_some_and(|e| e.value == "administrator")
                && doc.get(s, "disabled").is_none_or(|e| e.value != "yes")
                && doc.get(s, "password").is_some_and(|e| !e.value.is_empty())
        })
        .map(|(_, n)| n.to_string())
        .collect()
}

fn cluster_note(conf_dir: &Path) {
    if let Ok(c) = ironfence_config::Config::load(conf_dir)
        && c.is_cluster()
    {
        outln!(
            "this is a cluster member: publish the change to the other servers with `ironfence cluster sync --as-master` (the API, /api/v1/admins, pushes by itself)"
        );
    }
}

pub(crate) fn run(conf_dir: &Path, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let mut doc = load(conf_dir)?;
    let edit = |e: ironfence_config::EditError| anyhow::anyhow!("{e}");
    match cmd {
        AdminCommand::List => {
            let config = ironfence_config::Config::load(conf_dir)
                .map_err(|d| anyhow::anyhow!("configuration refused:\n{d}"))?;
            if config.admins.accounts.is_empty() {
                outln!(
                    "no admin account: create one with `ironfence admin add <name> --role administrator`"
                );
            }
            for a in &config.admins.accounts {
                outln!(
                    "{:<24} {:<14} {}{}{}",
                    a.name,
                    a.role,
                    if a.disabled { "disabled " } else { "" },
                    if a.totp.is_some() { "totp " } else { "" },
                    if a.password.is_empty() {
                        "no-password"
                    } else {
                        ""
                    }
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::Add(a) => {
            valid_account_name(&a.name).map_err(|e| anyhow::anyhow!(e))?;
            let role: ironfence_admin::Role = a.role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let s = section(&a.name);
            if doc.section(&s).is_some() {
                bail!(
                    "admin account {} exists already: use `ironfence admin passwd {}`",
                    a.name,
                    a.name
                );
            }
            let hash = read_password(&a.name, a.password_stdin)?;
            doc.set(&s, "role", role.as_str()).map_err(edit)?;
            doc.set(&s, "password", &hash).map_err(edit)?;
            save(conf_dir, &doc)?;
            outln!("admin account {} created ({role})", a.name);
        }
        AdminCommand::Passwd(a) => {
            let s = section(&a.name);
            if doc.section(&s).is_none() {
                bail!("no admin account {}", a.name);
            }
            let hash = read_password(&a.name, a.password_stdin)?;
            doc.set(&s, "password", &hash).map_err(edit)?;
            save(conf_dir, &doc)?;
            outln!("password of {} changed", a.name);
        }
        AdminCommand::Remove(a) => {
            let before = administrators(&doc);
            if !doc.remove_section(&section(&a.name)) {
                bail!("no admin account {}", a.name);
            }
            if !before.is_empty() && administrators(&doc).is_empty() {
                bail!(
                    "{} is the last enabled administrator: add another one first",
                    a.name
                );
            }
            save(conf_dir, &doc)?;
            outln!("admin account {} removed", a.name);
        }
        AdminCommand::Totp(a) => {
            let s = section(&a.name);
            if doc.section(&s).is_none() {
                bail!("no admin account {}", a.name);
            }
            if a.disable {
                doc.remove(&s, "totp");
                save(conf_dir, &doc)?;
                outln!("TOTP turned off for {}", a.name);
            } else {
                let mut secret = [0u8; 20];
                getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
                let b32 = ironfence_admin::totp::base32_encode(&secret);
                doc.set(&s, "totp", &b32).map_err(edit)?;
                save(conf_dir, &doc)?;
                let issuer = match ironfence_config::Config::load(conf_dir) {
                    Ok(c) if c.is_cluster() => "ironfence cluster".to_string(),
                    Ok(c) => format!("ironfence {}", c.identity),
                    Err(_) => "ironfence".to_string(),
                };
                outln!(
                    "TOTP turned on for {}: scan this URI into the authenticator app (or type the secret {b32}):",
                    a.name
                );
                outln!(
                    "{}",
                    ironfence_admin::totp::otpauth_uri(&issuer, &a.name, &b32)
                );
            }
        }
    }
    if ironfence_server::admin::auth::ensure_key(conf_dir)? {
        outln!(
            "created the admin token signing key {}/ssl/admin-token.key",
            conf_dir.display()
        );
    }
    cluster_note(conf_dir);
    Ok(ExitCode::SUCCESS)
}
