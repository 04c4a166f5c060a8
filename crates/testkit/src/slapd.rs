//! A private OpenLDAP `slapd` for LDAP source tests: a temporary directory holding a
//! cn=config (built with `slapadd -n0`) and a tiny directory (`slapadd -n1`: people and
//! groups under [`BASE_DN`]), listening on `ldap://<ip>:<free port>` of the address the test
//! chooses. Stopped by its PID on [`Drop`] (SIGTERM, then SIGKILL), with a watchdog for a
//! test process that dies; the directory is removed. Needs Debian's `slapd` package.

use anyhow::{Context, bail};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE_DN: &str = "dc=example,dc=org";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// The service account the code under test binds as (the database's root DN).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// A **test fixture**, not a secret: the server lives for one test, on a loopback address.
pub const ADMIN_PASSWORD: &str = "slapd-test-fixture-NOT-A-SECRET";

/// One person of the test directory (`uid=<uid>,ou=people,…`, inetOrgPerson).
#[derive(Debug, Clone)]
pub struct LdapUser {
    pub uid: String,
    pub password: String,
    /// `employeeType` (what rules match on) and the `groupOfNames` the user is a member of.
    pub employee_type: String,
    pub mail: String,
}

#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
    pub addr: SocketAddr,
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| {
        format!("{what}: is the slapd package installed (apt-get install slapd ldap-utils)?")
    })?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn config_ldif(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {d}/slapd.pid\n\n\
         dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
         olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
         dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
         include: file:///etc/ldap/schema/core.ldif\n\n\
         include: file:///etc/ldap/schema/cosine.ldif\n\n\
         include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
         dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
         dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\n\
         olcDatabase: {{0}}config\nolcAccess: {{0}}to * by * none\n\n\
         dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n\
         objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcSuffix: {BASE_DN}\n\
         olcRootDN: {ADMIN_DN}\nolcRootPW: {ADMIN_PASSWORD}\nolcDbDirectory: {d}/data\n\
         olcDbMaxSize: 16777216\n\
         olcAccess: {{0}}to attrs=userPassword by anonymous auth by self read by * none\n\
         olcAccess: {{1}}to * by users read by * none\n"
    )
}

fn data_ldif(users: &[LdapUser]) -> String {
    let mut s = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for u in users {
        let _ = write!(
            s,
            "dn: uid={uid},{PEOPLE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
             mail: {mail}\nemployeeType: {et}\nuserPassword: {pw}\n\n",
            uid = u.uid,
            mail = u.mail,
            et = u.employee_type,
            pw = u.password
        );
    }
    let mut groups: Vec<&str> = users.iter().map(|u| u.employee_type.as_str()).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let _ = writeln!(
            s,
            "dn: cn={g},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {g}"
        );
        for u in users.iter().filter(|u| u.employee_type == g) {
            let _ = writeln!(s, "member: uid={},{PEOPLE_DN}", u.uid);
        }
        s.push('\n');
    }
    s
}

impl Slapd {
    /// Starts slapd on `ip` (a free port) with `users`.
    pub fn start(ip: Ipv4Addr, users: &[LdapUser]) -> anyhow::Result<Slapd> {
        let dir = tempfile::Builder::new()
            .prefix("ironfence-slapd")
            .tempdir()?;
        let p = dir.path();
        fs::create_dir(p.join("slapd.d"))?;
        fs::create_dir(p.join("data"))?;
        fs::write(p.join("config.ldif"), config_ldif(p))?;
        fs::write(p.join("data.ldif"), data_ldif(users))?;
        run(
            Command::new("slapadd")
                .args(["-n0", "-F"])
                .arg(p.join("slapd.d"))
                .arg("-l")
                .arg(p.join("config.ldif")),
            "slapadd cn=config",
        )?;
        run(
            Command::new("slapadd")
                .args(["-n1", "-F"])
                .arg(p.join("slapd.d"))
                .arg("-l")
                .arg(p.join("data.ldif")),
            "slapadd data",
        )?;
        let port = TcpListener::bind((ip, 0))
            .with_context(|| format!("finding a free port on {ip}"))?
            .local_addr()?
            .port();
        let addr = SocketAddr::from((ip, port));
        let log = fs::File::create(p.join("slapd.log"))?;
        // -d 0: stay in the foreground (a child this test owns), no debug output.
        let child = Command::new("slapd")
            .args(["-d", "0", "-h"])
            .arg(format!("ldap://{addr}/"))
            .arg("-F")
            .arg(p.join("slapd.d"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting slapd (apt-get install slapd)")?;
        let watchdog = crate::spawn_watchdog(child.id())?;
        let mut me = Slapd {
            child: Some(child),
            watchdog: Some(watchdog),
            dir: Some(dir),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(me);
            }
            if let Some(c) = me.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let log = me
                    .dir
                    .as_ref()
                    .map(|d| crate::tail(&d.path().join("slapd.log"), 20))
                    .unwrap_or_default();
                bail!("slapd exited ({status}): {log}");
            }
            if Instant::now() > deadline {
                bail!("slapd did not listen on {addr} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut c) = self.child.take() {
            let pid = c.id() as libc::pid_t;
            // SIGTERM by the PID this struct spawned, SIGKILL if it lingers.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}
