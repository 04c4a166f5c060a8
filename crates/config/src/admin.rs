//! `conf/admin.conf`: the administration interface's accounts, and pf.conf `[admin]`.
//!
//! ```ini
//! [account alice]
//! role=administrator          # administrator | operator | read-only
//! password=$argon2id$v=19$m=19456,t=2,p=1$…   # PHC string, never a clear-text password
//! totp=JBSWY3DPEHPK3PXP       # optional RFC 6238 secret (base32)
//! disabled=no
//! ```
//!
//! The accounts are configuration, not database rows: the file is synchronized to every
//! cluster member with the rest of `conf/`, so an admin can log in on any server, including
//! one whose database is read-only (partitioned). It holds password hashes and TOTP secrets:
//! checkup warns unless it is private (mode 0600). Edited by `ironfence admin …` and the API
//! (comments preserved).

use crate::diag::FileDiags;
use crate::ini::Document;
use crate::pf::Secret;
use crate::value::parse_bool;
use ironfence_admin::Role;
use std::net::{IpAddr, Ipv4Addr};

/// File name inside the configuration directory.
pub const ADMIN_CONF: &str = "admin.conf";
/// Section prefix of an account.
pub const ACCOUNT_PREFIX: &str = "account ";
/// Keys of an `[account …]` section.
pub const ACCOUNT_KEYS: &[&str] = &["role", "password", "totp", "disabled"];

/// pf.conf `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminListenConf {
    /// The address a single server binds `[ports] admin` on (default 127.0.0.1: reach it with
    /// an SSH tunnel, or set a management address). Unused in a cluster (haproxy serves the
    /// admin on the management VIP).
    pub listen: IpAddr,
}

impl Default for AdminListenConf {
    fn default() -> Self {
        AdminListenConf {
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// One admin account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string (or an imported bcrypt hash); empty: no password, cannot log in.
    pub password: Secret,
    /// The TOTP secret (decoded), when the second factor is on.
    pub totp: Option<TotpSecret>,
    pub disabled: bool,
    /// Line of the section header.
    pub line: usize,
}

/// A TOTP shared secret: used, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(pub Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// admin.conf, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminsConf {
    /// In file order.
    pub accounts: Vec<AdminAccount>,
}

impl AdminsConf {
    pub fn get(&self, name: &str) -> Option<&AdminAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Enabled administrators (the last one may not be removed or demoted).
    pub fn active_administrators(&self) -> impl Iterator<Item = &AdminAccount> {
        self.accounts
            .iter()
            .filter(|a| a.role == Role::Administrator && !a.disabled && !a.password.is_empty())
    }

    pub(crate) fn from_document(doc: Option<&Document>, d: &mut FileDiags<'_>) -> AdminsConf {
        let mut out = AdminsConf::default();
        let Some(doc) = doc else {
            return out;
        };
        for (section, line) in doc.sections() {
            let Some(name) = section.strip_prefix(ACCOUNT_PREFIX) else {
                d.error(
                    Some(line),
                    Some(section),
                    format!("unknown section [{section}]: admin.conf holds only [account <name>] sections"),
                );
                continue;
            };
            let name = name.trim();
            if let Err(why) = valid_account_name(name) {
                d.error(Some(line), Some(section), why);
                continue;
            }
            let s = doc.section(section).expect("listed section");
            for (key, e) in s.entries() {
                if !ACCOUNT_KEYS.contains(&key) {
                    d.error(
                        Some(e.line),
                        Some(section),
                        format!(
                            "unknown key {key}: remove it (known keys: {})",
                            ACCOUNT_KEYS.join(", ")
                        ),
                    );
                }
            }
            let role = match s.get("role") {
                None => {
                    d.error(
                        Some(line),
                        Some(section),
                        "no role=: set role=administrator, operator or read-only",
                    );
                    continue;
                }
                Some(e) => match e.value.parse::<Role>() {
                    Ok(r) => r,
                    Err(err) => {
                        d.error(Some(e.line), Some(section), format!("role: {err}"));
                        continue;
                    }
                },
            };
            let password = match s.get("password") {
                None => Secret::default(),
                Some(e) => {
                    if !e.value.is_empty() && !is_supported_hash(&e.value) {
                        d.error(
                            Some(e.line),
                            Some(section),
                            "password is not a supported hash (argon2id PHC string `$argon2id$…`, or bcrypt `$2a$/$2b$/$2y$`): set it with `ironfence admin passwd <name>`, never write a clear-text password here",
                        );
                        continue;
                    }
                    Secret::new(e.value.clone())
                }
            };
            if password.is_empty() {
                d.warning(
                    Some(line),
                    Some(section),
                    format!("account {name} has no password and cannot log in: set one with `ironfence admin passwd {name}`"),
                );
            }
            let totp = match s.get("totp").filter(|e| !e.value.is_empty()) {
                None => None,
                Some(e) => match ironfence_admin::totp::base32_decode(&e.value) {
                    Some(b) if b.len() >= ironfence_admin::totp::MIN_SECRET_BYTES => {
                        Some(TotpSecret(b))
                    }
                    Some(b) => {
                        d.error(
                            Some(e.line),
                            Some(section),
                            format!("totp: the secret is {} bytes; RFC 4226 asks for at least {} (generate one with `ironfence admin totp {name}`)", b.len(), ironfence_admin::totp::MIN_SECRET_BYTES),
                        );
                        continue;
                    }
                    None => {
                        d.error(
                            Some(e.line),
                            Some(section),
                            "totp is not base32 (letters A-Z and digits 2-7): generate one with `ironfence admin totp <name>`",
                        );
                        continue;
                    }
                },
            };
            let disabled = match s.get("disabled") {
                None => false,
                Some(e) => match parse_bool(&e.value) {
                    Some(b) => b,
                    None => {
                        d.error(
                            Some(e.line),
                            Some(section),
                            format!("disabled {:?} is not yes or no", e.value),
                        );
                        continue;
                    }
                },
            };
            out.accounts.push(AdminAccount {
                name: name.to_string(),
                role,
                password,
                totp,
                disabled,
                line,
            });
        }
        if out.accounts.is_empty() {
            d.warning(
                None,
                None,
                "no admin account: the administration interface cannot be used; create one with `ironfence admin add <name> --role administrator`",
            );
        } else if out.active_administrators().next().is_none() {
            d.warning(
                None,
                None,
                "no enabled administrator account with a password: nobody can change the configuration or the admin accounts from the interface",
            );
        }
        out
    }
}

/// Names: 1-64 of letters, digits, `.`, `_`, `-`, `@` (they appear in section headers, URLs
/// and the audit log).
pub fn valid_account_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("account name {name:?} must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(format!(
            "account name {name:?} may contain only letters, digits, '.', '_', '-' and '@'"
        ));
    }
    Ok(())
}

/// The hash formats `ironfence_portal::password::verify` checks (argon2 PHC, bcrypt).
pub fn is_supported_hash(v: &str) -> bool {
    let phc = ["$argon2id$", "$argon2i$", "$argon2d$"]
        .iter()
        .any(|p| v.starts_with(p))
        && v.split('$').count() == 6;
    let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| v.starts_with(p)) && v.len() == 60;
    phc || bcrypt
}

/// Passwords the CLI and the API refuse (checked before hashing; nothing clear is stored).
pub fn password_weakness(password: &str) -> Option<String> {
    const MIN: usize = 12;
    const DEFAULTS: &[&str] = &[
        "admin",
        "packetfence",
        "password",
        "administrator",
        "ironfence",
        "changeme",
    ];
    let lower = password.to_ascii_lowercase();
    if DEFAULTS.iter().any(|d| {
        lower == *d || lower.starts_with(d) && lower[d.len()..].chars().all(|c| c.is_ascii_digit())
    }) {
        Some("is a well-known default".to_string())
    } else if password.chars().count() < MIN {
        Some(format!("is shorter than {MIN} characters"))
    } else {
        None
    }
}

/// Mode check: admin.conf must not be readable by anyone but its owner.
pub(crate) fn warn_not_private(conf_dir: &std::path::Path, diags: &mut crate::Diagnostics) {
    use std::os::unix::fs::PermissionsExt;
    let path = conf_dir.join(ADMIN_CONF);
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.permissions().mode() & 0o077 != 0
    {
        diags.push(
            crate::Severity::Warning,
            &path,
            None,
            None,
            format!(
                "holds admin password hashes and TOTP secrets but is readable beyond its owner (mode {:o}): run `chmod 600 {}`",
                meta.permissions().mode() & 0o7777,
                path.display()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostics;
    use std::path::Path;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA";

    fn parse(text: &str) -> (AdminsConf, Diagnostics) {
        let doc = Document::parse("conf/admin.conf", text).unwrap();
        let mut diags = Diagnostics::default();
        let conf = AdminsConf::from_document(
            Some(&doc),
            &mut FileDiags {
                file: Path::new("conf/admin.conf"),
                out: &mut diags,
            },
        );
        (conf, diags)
    }

    #[test]
    fn accounts_parse() {
        let (c, d) = parse(&format!(
            "# admins\n[account alice]\nrole=administrator\npassword={HASH}\ntotp=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\n[account bob]\nrole=read-only\npassword={HASH}\ndisabled=yes\n"
        ));
        assert!(d.is_empty(), "{d}");
        assert_eq!(c.accounts.len(), 2);
        let a = c.get("alice").unwrap();
        assert_eq!(a.role, Role::Administrator);
        assert_eq!(a.totp.as_ref().unwrap().0, b"12345678901234567890");
        assert_eq!(a.line, 2);
        assert!(c.get("bob").unwrap().disabled);
        assert_eq!(c.active_administrators().count(), 1);
        assert!(!format!("{a:?}").contains("argon2"), "no hash in Debug");
    }

    #[test]
    fn errors_name_file_and_line() {
        let rows = [
            ("[account a]\nrole=root\n", 2, "unknown admin role"),
            (
                "[account a]\nrole=operator\npassword=hunter2\n",
                3,
                "not a supported hash",
            ),
            (
                "[account a]\nrole=operator\ntotp=not*base32\n",
                3,
                "not base32",
            ),
            ("[account a]\nrole=operator\ntotp=MZXW6\n", 3, "at least 16"),
            (
                "[account a]\nrole=operator\ndisabled=maybe\n",
                3,
                "yes or no",
            ),
            ("[account a]\nrole=operator\ncolour=red\n", 3, "unknown key"),
            ("[account a b]\nrole=operator\n", 1, "may contain only"),
            ("[general]\n", 1, "unknown section"),
            ("[account a]\npassword=\n", 1, "no role"),
        ];
        for (text, line, want) in rows {
            let (_, d) = parse(text);
            let e = d
                .errors()
                .next()
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.message.contains(want), "{text}: {e}");
            assert!(
                e.to_string().contains(&format!("conf/admin.conf:{line}")),
                "{e}"
            );
        }
    }

    #[test]
    fn warnings_for_no_account_and_weak_passwords() {
        let (_, d) = parse("# nothing yet\n");
        assert!(d.warnings().any(|w| w.message.contains("no admin account")));
        let (_, d) = parse("[account a]\nrole=operator\npassword=\n");
        assert!(
            d.warnings()
                .any(|w| w.message.contains("no enabled administrator"))
        );
        assert!(d.warnings().any(|w| w.message.contains("no password")));
        for weak in ["admin", "packetfence", "Password1", "short"] {
            assert!(password_weakness(weak).is_some(), "{weak}");
        }
        assert_eq!(password_weakness("a long enough passphrase"), None);
        assert!(is_supported_hash(HASH));
        assert!(!is_supported_hash("$argon2id$x"));
    }
}
