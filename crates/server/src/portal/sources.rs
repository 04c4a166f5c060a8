//! Authentication sources: one trait, three implementations (local users, guest, LDAP/AD).
//! A source turns what the user typed into [`Attributes`] for the rules, or refuses.
//!
//! Unknown user and wrong password are the same [`AuthError::InvalidCredentials`], and an
//! unknown local user still costs one password verification (against a dummy hash), so
//! neither the message nor the time tells which users exist.

use ironfence_config::authentication::{
    LdapConf, LdapEncryption, LdapScope, SourceConf, SourceKind,
};
use ironfence_portal::password;
use ironfence_portal::rules::Attributes;
use ironfence_store::Store;
use std::future::Future;
use std::pin::Pin;

/// What the user submitted.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Guest: accepted the usage policy.
    pub aup_accepted: bool,
    pub name: String,
    pub email: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user, wrong password, expired account: one message for all.
    InvalidCredentials,
    /// Guest without accepting the usage policy, or an invalid field.
    Incomplete(&'static str),
    /// The source could not be asked (directory down, database error).
    Unavailable(String),
}

/// Who authenticated: the owner (pid) recorded on the node, and the attributes for rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub pid: String,
    pub attributes: Attributes,
    pub email: Option<String>,
    pub name: Option<String>,
}

pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Authenticated, AuthError>> + Send + 'a>>;

pub trait Source: Send + Sync {
    fn authenticate<'a>(&'a self, creds: &'a Credentials, now: i64) -> AuthFuture<'a>;
}

/// The implementation for a configured source.
pub fn for_conf(conf: &SourceConf, store: &Store) -> Box<dyn Source> {
    match &conf.kind {
        SourceKind::Sql => Box::new(LocalSource {
            store: store.clone(),
        }),
        SourceKind::Null => Box::new(GuestSource),
        SourceKind::Ldap(l) => Box::new(LdapSource { conf: l.clone() }),
        SourceKind::Eaptls => Box::new(CertificateOnlySource),
    }
}

/// An EAPTLS source (802.1X client certificates): nothing to type on the portal, so every
/// portal login through it is refused as invalid credentials.
#[derive(Debug)]
pub struct CertificateOnlySource;

impl Source for CertificateOnlySource {
    fn authenticate<'a>(&'a self, _creds: &'a Credentials, _now: i64) -> AuthFuture<'a> {
        Box::pin(async { Err(AuthError::InvalidCredentials) })
    }
}

fn plausible_username(u: &str) -> bool {
    !u.is_empty() && u.len() <= 255 && !u.chars().any(char::is_control)
}

/// Local users: the store's `password` table.
#[derive(Debug)]
pub struct LocalSource {
    pub store: Store,
}

impl Source for LocalSource {
    fn authenticate<'a>(&'a self, creds: &'a Credentials, now: i64) -> AuthFuture<'a> {
        Box::pin(async move {
            let pw = creds.password.clone();
            if !plausible_username(&creds.username) || creds.password.len() > 1024 {
                tokio::task::spawn_blocking(move || password::dummy_verify(&pw))
                    .await
                    .ok();
                return Err(AuthError::InvalidCredentials);
            }
            let user = self
                .store
                .get_local_user(&creds.username)
                .await
                .map_err(|e| AuthError::Unavailable(e.to_string()))?;
            // argon2 costs tens of milliseconds: off the async workers.
            let ok = tokio::task::spawn_blocking(move || match user {
                Some(u) => password::verify(&u.password, &pw) && u.valid_at(now),
                None => {
                    password::dummy_verify(&pw);
                    false
                }
            })
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
            if !ok {
                return Err(AuthError::InvalidCredentials);
            }
            let mut attributes = Attributes::new();
            attributes.insert("username", creds.username.clone());
            Ok(Authenticated {
                pid: creds.username.clone(),
                attributes,
                email: None,
                name: None,
            })
        })
    }
}

/// Guests: acceptance of the usage policy, optional name and e-mail.
#[derive(Debug)]
pub struct GuestSource;

impl Source for GuestSource {
    fn authenticate<'a>(&'a self, creds: &'a Credentials, _now: i64) -> AuthFuture<'a> {
        Box::pin(async move {
            if !creds.aup_accepted {
                return Err(AuthError::Incomplete(
                    "Please accept the acceptable use policy to continue.",
                ));
            }
            let email = creds.email.trim().to_ascii_lowercase();
            let name = creds.name.trim().to_string();
            if email.len() > 254
                || name.len() > 128
                || email.chars().chain(name.chars()).any(char::is_control)
            {
                return Err(AuthError::Incomplete("Name or e-mail address too long."));
            }
            if !email.is_empty() && !looks_like_email(&email) {
                return Err(AuthError::Incomplete(
                    "Please enter a valid e-mail address, or leave it empty.",
                ));
            }
            let mut attributes = Attributes::new();
            if !email.is_empty() {
                attributes.insert("email", email.clone());
            }
            if !name.is_empty() {
                attributes.insert("name", name.clone());
            }
            Ok(Authenticated {
                // The person is the e-mail given; anonymous guests share PacketFence's `default`.
                pid: if email.is_empty() {
                    "default".into()
                } else {
                    email.clone()
                },
                attributes,
                email: (!email.is_empty()).then_some(email),
                name: (!name.is_empty()).then_some(name),
            })
        })
    }
}

fn looks_like_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// LDAP / Active Directory: service bind, search by `usernameattribute` under `basedn`, then
/// a bind as the DN found with the user's password. The search attributes feed the rules.
#[derive(Debug)]
pub struct LdapSource {
    pub conf: LdapConf,
}

impl LdapSource {
    fn url(&self) -> String {
        let scheme = if self.conf.encryption == LdapEncryption::Ssl {
            "ldaps"
        } else {
            "ldap"
        };
        let host = if self.conf.host.contains(':') && !self.conf.host.starts_with('[') {
            format!("[{}]", self.conf.host)
        } else {
            self.conf.host.clone()
        };
        format!("{scheme}://{host}:{}", self.conf.port)
    }

    async fn connect(&self) -> Result<ldap3::Ldap, AuthError> {
        if self.conf.encryption != LdapEncryption::None {
            // This build links no TLS for LDAP (ldap3 without its TLS features).
            return Err(AuthError::Unavailable(format!(
                "encryption={:?} is not available in this build: use encryption=none on a trusted network",
                self.conf.encryption
            )));
        }
        let settings =
            ldap3::LdapConnSettings::new().set_conn_timeout(self.conf.connection_timeout);
        let (conn, ldap) = ldap3::LdapConnAsync::with_settings(settings, &self.url())
            .await
            .map_err(|e| AuthError::Unavailable(format!("LDAP {}: {e}", self.url())))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }
}

impl Source for LdapSource {
    fn authenticate<'a>(&'a self, creds: &'a Credentials, _now: i64) -> AuthFuture<'a> {
        Box::pin(async move {
            // An empty password is an LDAP "unauthenticated bind", which succeeds: refuse.
            if !plausible_username(&creds.username)
                || creds.password.is_empty()
                || creds.password.len() > 1024
            {
                return Err(AuthError::InvalidCredentials);
            }
            let timeout = self.conf.connection_timeout;
            let unavailable =
                |e: ldap3::LdapError| AuthError::Unavailable(format!("LDAP {}: {e}", self.url()));
            let mut ldap = self.connect().await?;
            ldap.with_timeout(timeout)
                .simple_bind(&self.conf.binddn, &self.conf.password)
                .await
                .and_then(|r| r.success())
                .map_err(unavailable)?;
            let filter = format!(
                "({}={})",
                self.conf.usernameattribute,
                ldap3::ldap_escape(&creds.username)
            );
            let scope = match self.conf.scope {
                LdapScope::Base => ldap3::Scope::Base,
                LdapScope::One => ldap3::Scope::OneLevel,
                LdapScope::Sub => ldap3::Scope::Subtree,
            };
            let mut attrs: Vec<&str> = self
                .conf
                .searchattributes
                .iter()
                .map(String::as_str)
                .collect();
            attrs.push(&self.conf.usernameattribute);
            let (entries, _) = ldap
                .with_timeout(timeout)
                .search(&self.conf.basedn, scope, &filter, attrs)
                .await
                .and_then(|r| r.success())
                .map_err(unavailable)?;
            let _ = ldap.unbind().await;
            // Unknown, or ambiguous: the same answer as a wrong password, after the same
            // second connection and bind (to a DN that does not exist), so the time taken
            // does not tell either.
            let Ok([entry]) = <[_; 1]>::try_from(entries) else {
                if let Ok(mut user) = self.connect().await {
                    let dn = format!(
                        "{}=ironfence-no-such-user,{}",
                        self.conf.usernameattribute, self.conf.basedn
                    );
                    let _ = user
                        .with_timeout(timeout)
                        .simple_bind(&dn, &creds.password)
                        .await;
                    let _ = user.unbind().await;
                }
                return Err(AuthError::InvalidCredentials);
            };
            let entry = ldap3::SearchEntry::construct(entry);
            let mut user = self.connect().await?;
            let bound = user
                .with_timeout(timeout)
                .simple_bind(&entry.dn, &creds.password)
                .await
                .map_err(unavailable)?;
            let _ = user.unbind().await;
            if bound.rc != 0 {
                return Err(AuthError::InvalidCredentials);
            }
            let mut attributes = Attributes::new();
            attributes.insert("dn", entry.dn.clone());
            for (name, values) in &entry.attrs {
                for v in values {
                    attributes.insert(name, v.clone());
                }
            }
            attributes.insert("username", creds.username.clone());
            Ok(Authenticated {
                pid: creds.username.clone(),
                attributes,
                email: entry.attrs.get("mail").and_then(|v| v.first().cloned()),
                name: entry.attrs.get("cn").and_then(|v| v.first().cloned()),
            })
        })
    }
}
