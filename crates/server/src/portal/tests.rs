//! Router-level tests: the portal served by the real serve loop on 127.0.73.1, a raw
//! HTTP/1.1 client bound to a device address, a real SQLite store.

use super::*;
use ironfence_store::portal::LocalUser;
use ironfence_store::{AccountingEvent, AccountingKind};
use std::io::{Read, Write};

const AUTH: &str = "\
[local]
type=SQL
description=Staff login

[local rule boss]
condition0=username,equals,boss
action0=set_role=gaming
action1=set_access_duration=2h

[local rule everyone]
action0=set_role=default
action1=set_access_duration=1D

[guest]
type=Null
description=Guest

[guest rule aup]
action0=set_role=guest
action1=set_access_duration=4h

[closed]
type=SQL
description=Nobody matches

[closed rule never]
condition0=username,equals,nobody-at-all
action0=set_role=default
action1=set_access_duration=1h
";

struct Lab {
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    addr: SocketAddr,
    _stop: watch::Sender<bool>,
}

async fn lab() -> Lab {
    lab_with(AUTH).await
}

async fn lab_with(auth: &str) -> Lab {
    lab_full(auth, "", None).await
}

/// `pf_extra`: more pf.conf; `pem`: conf/ssl/server.pem.
async fn lab_full(auth: &str, pf_extra: &str, pem: Option<&str>) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(conf.join("authentication.conf"), auth).unwrap();
    std::fs::write(
        conf.join("pf.conf"),
        format!("[general]\nstate_dir = var\n{pf_extra}"),
    )
    .unwrap();
    if let Some(pem) = pem {
        std::fs::create_dir_all(conf.join("ssl")).unwrap();
        std::fs::write(conf.join("ssl/server.pem"), pem).unwrap();
    }
    let config = ironfence_config::Config::load(&conf).unwrap_or_else(|d| panic!("{d}"));
    crate::settings::prepare_state_dir(&config).unwrap();
    let store = ironfence_store::Store::open(&crate::settings::store_config(&config))
        .await
        .unwrap();
    let metrics = crate::metrics::Metrics::new();
    let spool = crate::spool::Spool::open(
        &crate::settings::spool_path(&config),
        1 << 20,
        metrics.spool.clone(),
    )
    .unwrap();
    let (audit, _rx) =
        crate::audit::Audit::start(&crate::settings::audit(&config), &metrics).unwrap();
    let nodes = crate::node_cache::new(store.clone(), &crate::node_cache::settings_from(&config));
    let shared = Arc::new(Shared {
        nodes,
        conf_dir: conf.clone(),
        config: std::sync::RwLock::new(Arc::new(config)),
        store,
        metrics,
        audit,
        reloads: watch::channel(0).0,
        db: crate::db_health::DbHealth::default(),
        running_version: std::sync::RwLock::new(None),
        api_access: ironfence_webservices::AllowedPeers::default(),
        spool,
        front_door: crate::front_door::FrontDoor::default(),
        locations: crate::coa::location::Recorder::default(),
        eap: crate::eap_service::EapService::default(),
    });
    let portal = Portal::new(shared.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.73.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let site = Site {
        base_url: "http://127.0.73.1".into(),
        trust_forwarded: false,
    };
    web::serve(
        "portal test",
        listener,
        None,
        router(portal, site),
        web::Limits::default(),
        stop_rx,
    );
    Lab {
        _dir: dir,
        shared,
        addr,
        _stop: stop,
    }
}

fn mac(n: u8) -> Mac {
    Mac([0x02, 0x73, 0, 0, 0, n])
}

/// The device at `ip` holds a lease (the ip4log row DHCP writes).
async fn lease(lab: &Lab, ip: Ipv4Addr, m: Mac) {
    let ev = AccountingEvent {
        mac: Some(m),
        framed_ip: Some(ip),
        session_id: Some(format!("s-{m}")),
        ..AccountingEvent::new(AccountingKind::Start, "sw", "192.0.2.1", now_unix())
    };
    lab.shared.store.record_accounting(&ev).await.unwrap();
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One raw HTTP/1.1 exchange from `from` (a device address on 127.0.73.x).
async fn raw(lab: &Lab, from: Ipv4Addr, request: Vec<u8>) -> Reply {
    let addr = lab.addr;
    tokio::task::spawn_blocking(move || {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&SocketAddr::from((from, 0)).into()).unwrap();
        sock.connect(&addr.into()).unwrap();
        let mut s: std::net::TcpStream = sock.into();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let _ = s.write_all(&request);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Reply {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    })
    .await
    .unwrap()
}

async fn get(lab: &Lab, from: Ipv4Addr, host: &str, path: &str, cookie: Option<&str>) -> Reply {
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    raw(
        lab,
        from,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{cookie}Connection: close\r\n\r\n")
            .into_bytes(),
    )
    .await
}

async fn post(lab: &Lab, from: Ipv4Addr, path: &str, cookie: &str, body: &str) -> Reply {
    raw(
        lab,
        from,
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.73.1\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
    .await
}

/// Opens the landing page: (cookie "name=value", csrf token, page).
async fn open_landing(lab: &Lab, from: Ipv4Addr) -> (String, String, Reply) {
    let r = get(
        lab,
        from,
        "127.0.73.1",
        "/captive-portal?destination_url=http%3A%2F%2Fexample.org%2Fnews",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.header("set-cookie").expect("session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = r
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (cookie, csrf, r)
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 73, n)
}

async fn add_user(lab: &Lab, pid: &str, password: &str) {
    let user = LocalUser {
        pid: pid.into(),
        password: ironfence_portal::password::hash(password).unwrap(),
        nt_hash: Some(ironfence_eap::mschapv2::nt_password_hash(password)),
        valid_from: None,
        expiration: None,
    };
    lab.shared
        .store
        .upsert_local_user(&user, now_unix())
        .await
        .unwrap();
}

#[tokio::test]
async fn local_user_registers_with_the_rule_role_and_api_and_probes_follow() {
    let lab = lab().await;
    let dev = ip(10);
    lease(&lab, dev, mac(10)).await;
    add_user(&lab, "boss", "hunter2-long").await;
    // Unregistered: captive, probes redirected to the portal.
    let api = get(&lab, dev, "127.0.73.1", "/captive-portal/api", None).await;
    assert_eq!(
        api.header("content-type").as_deref(),
        Some("application/captive+json")
    );
    let v: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    assert_eq!(v["captive"], true);
    assert_eq!(v["user-portal-url"], "http://127.0.73.1/captive-portal");
    let probe = get(
        &lab,
        dev,
        "connectivitycheck.gstatic.com",
        "/generate_204",
        None,
    )
    .await;
    assert_eq!(probe.status, 302);
    assert_eq!(
        probe.header("location").as_deref(),
        Some("http://127.0.73.1/captive-portal")
    );

    let (cookie, csrf, page) = open_landing(&lab, dev).await;
    assert!(
        page.body.contains("Staff login") && page.body.contains("Guest"),
        "{}",
        page.body
    );
    let r = post(&lab, dev, "/captive-portal/login/local", &cookie, &format!("csrf={csrf}&username=boss&password=hunter2-long&destination_url=http%3A%2F%2Fexample.org%2Fnews")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Your device is registered"), "{}", r.body);
    assert!(
        r.body
            .contains("href=\"http:&#x2f;&#x2f;example.org&#x2f;news\""),
        "{}",
        r.body
    );
    let node = lab.shared.store.get_node(mac(10)).await.unwrap().unwrap();
    assert_eq!(node.status, NodeStatus::Registered);
    assert_eq!(node.role.as_deref(), Some("gaming"), "first matching rule");
    assert_eq!(node.pid, "boss");
    let left = node.unregdate.unwrap() - now_unix();
    assert!((7000..=7200).contains(&left), "2h access: {left}");

    // Registered: not captive, probes get their success answers, the landing says so.
    let v: serde_json::Value = serde_json::from_str(
        &get(&lab, dev, "127.0.73.1", "/captive-portal/api", None)
            .await
            .body,
    )
    .unwrap();
    assert_eq!(v["captive"], false);
    assert!(v["seconds-remaining"].as_i64().unwrap() > 7000);
    assert_eq!(
        get(
            &lab,
            dev,
            "connectivitycheck.gstatic.com",
            "/generate_204",
            None
        )
        .await
        .status,
        204
    );
    let apple = get(&lab, dev, "captive.apple.com", "/hotspot-detect.html", None).await;
    assert!(
        apple.body.contains("<TITLE>Success</TITLE>"),
        "{}",
        apple.body
    );
    assert_eq!(
        get(
            &lab,
            dev,
            "www.msftconnecttest.com",
            "/connecttest.txt",
            None
        )
        .await
        .body,
        "Microsoft Connect Test"
    );
    assert_eq!(
        get(&lab, dev, "detectportal.firefox.com", "/success.txt", None)
            .await
            .body,
        "success\n"
    );
    assert!(
        get(&lab, dev, "127.0.73.1", "/captive-portal", None)
            .await
            .body
            .contains("Your device is registered")
    );
    let c = lab
        .shared
        .metrics
        .portal
        .get_or_create(&[("result", "registered")])
        .get();
    assert_eq!(c, 1);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let lab = lab().await;
    let dev = ip(11);
    lease(&lab, dev, mac(11)).await;
    add_user(&lab, "alice", "correct-password").await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let wrong = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=alice&password=nope"),
    )
    .await;
    let unknown = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=mallory&password=nope"),
    )
    .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    let msg = |r: &Reply| {
        r.body
            .split("id=\"error\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(msg(&wrong), msg(&unknown));
    assert_eq!(msg(&wrong), INVALID_CREDENTIALS);
    let node = lab.shared.store.get_node(mac(11)).await.unwrap();
    assert!(node.is_none_or(|n| n.status != NodeStatus::Registered));
}

#[tokio::test]
async fn a_source_without_matching_rule_refuses_clearly() {
    let lab = lab().await;
    let dev = ip(12);
    lease(&lab, dev, mac(12)).await;
    add_user(&lab, "carol", "pw-carol-123").await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/closed",
        &cookie,
        &format!("csrf={csrf}&username=carol&password=pw-carol-123"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("not allowed to register a device"),
        "{}",
        r.body
    );
    assert!(
        lab.shared
            .store
            .get_node(mac(12))
            .await
            .unwrap()
            .is_none_or(|n| n.status != NodeStatus::Registered)
    );
}

#[tokio::test]
async fn guest_needs_the_aup_and_records_the_person() {
    let lab = lab().await;
    let dev = ip(13);
    lease(&lab, dev, mac(13)).await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/guest/guest",
        &cookie,
        &format!("csrf={csrf}&name=Gus&email=gus%40example.org"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("accept the acceptable use policy"),
        "{}",
        r.body
    );
    let r = post(
        &lab,
        dev,
        "/captive-portal/guest/guest",
        &cookie,
        &format!("csrf={csrf}&name=Gus&email=Gus%40Example.org&aup=yes"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let node = lab.shared.store.get_node(mac(13)).await.unwrap().unwrap();
    assert_eq!(
        (node.status, node.role.as_deref(), node.pid.as_str()),
        (NodeStatus::Registered, Some("guest"), "gus@example.org")
    );
    let person = lab
        .shared
        .store
        .get_person("gus@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(person.firstname.as_deref(), Some("Gus"));
    // A login source's route does not take guest posts and vice versa.
    let (cookie, csrf, _) = open_landing(&lab, ip(14)).await;
    let r = post(
        &lab,
        ip(14),
        "/captive-portal/login/guest",
        &cookie,
        &format!("csrf={csrf}&aup=yes"),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn csrf_is_required_and_bound_to_the_session() {
    let lab = lab().await;
    let dev = ip(15);
    lease(&lab, dev, mac(15)).await;
    add_user(&lab, "dave", "dave-password").await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let (other_cookie, _, _) = open_landing(&lab, dev).await;
    for (cookie, body) in [
        (
            cookie.as_str(),
            "username=dave&password=dave-password".to_string(),
        ),
        (
            cookie.as_str(),
            "csrf=AAAA&username=dave&password=dave-password".to_string(),
        ),
        (
            other_cookie.as_str(),
            format!("csrf={csrf}&username=dave&password=dave-password"),
        ),
        (
            "x=y",
            format!("csrf={csrf}&username=dave&password=dave-password"),
        ),
    ] {
        let r = post(&lab, dev, "/captive-portal/login/local", cookie, &body).await;
        assert_eq!(r.status, 403, "{cookie} {body}: {}", r.body);
    }
    assert!(
        lab.shared
            .store
            .get_node(mac(15))
            .await
            .unwrap()
            .is_none_or(|n| n.status != NodeStatus::Registered)
    );
}

#[tokio::test]
async fn unknown_device_is_not_registered() {
    let lab = lab().await;
    add_user(&lab, "erin", "erin-password").await;
    let dev = ip(16); // no ip4log row
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=erin&password=erin-password"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("could not be identified"), "{}", r.body);
}

#[tokio::test]
async fn rate_limit_per_source_ip() {
    let lab = lab().await;
    let dev = ip(17);
    lease(&lab, dev, mac(17)).await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = post(
            &lab,
            dev,
            "/captive-portal/login/local",
            &cookie,
            &format!("csrf={csrf}&username=nobody&password=x"),
        )
        .await;
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    // Another device is not affected.
    let (cookie2, csrf2, _) = open_landing(&lab, ip(18)).await;
    let r = post(
        &lab,
        ip(18),
        "/captive-portal/login/local",
        &cookie2,
        &format!("csrf={csrf2}&username=nobody&password=x"),
    )
    .await;
    assert_eq!(r.status, 403, "not identified, but not rate limited");
}

#[tokio::test]
async fn other_hosts_redirect_to_the_portal_without_open_redirect() {
    let lab = lab().await;
    let dev = ip(19);
    let r = get(&lab, dev, "www.example.org", "/some/page?x=1", None).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some(
            "http://127.0.73.1/captive-portal?destination_url=http%3A%2F%2Fwww.example.org%2Fsome%2Fpage%3Fx%3D1"
        )
    );
    // A hostile destination never comes back as a link or a redirect.
    let r = get(
        &lab,
        dev,
        "127.0.73.1",
        "/captive-portal?destination_url=javascript%3Aalert(1)",
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("javascript"), "{}", r.body);
    let r = get(
        &lab,
        dev,
        "127.0.73.1",
        "/captive-portal?destination_url=%2F%2Fevil.example",
        None,
    )
    .await;
    assert!(!r.body.contains("evil.example"), "{}", r.body);
}

#[tokio::test]
async fn degraded_mode_answers_503_with_the_guides_message_and_writes_nothing() {
    let lab = lab().await;
    let dev = ip(20);
    lease(&lab, dev, mac(20)).await;
    add_user(&lab, "frank", "frank-password").await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    lab.shared.db.set_read_only_for_test(true);
    for path in ["/captive-portal", "/captive-portal/api", "/generate_204"] {
        let r = get(&lab, dev, "127.0.73.1", path, None).await;
        assert_eq!(r.status, 503, "{path}");
        assert!(
            r.body.contains("currently experiencing an issue"),
            "{path}: {}",
            r.body
        );
    }
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=frank&password=frank-password"),
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(
        lab.shared
            .store
            .get_node(mac(20))
            .await
            .unwrap()
            .is_none_or(|n| n.status != NodeStatus::Registered),
        "nothing written"
    );
    lab.shared.db.set_read_only_for_test(false);
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=frank&password=frank-password"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused() {
    let lab = lab().await;
    let dev = ip(21);
    lease(&lab, dev, mac(21)).await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/local",
        &cookie,
        &format!("csrf={csrf}&username=%ZZ"),
    )
    .await;
    assert_eq!(r.status, 400);
    let big = format!("csrf={csrf}&username={}", "a".repeat(20_000));
    let r = post(&lab, dev, "/captive-portal/login/local", &cookie, &big).await;
    assert_eq!(r.status, 413);
    let huge_header = format!(
        "GET /captive-portal HTTP/1.1\r\nHost: 127.0.73.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let r = raw(&lab, dev, huge_header.into_bytes()).await;
    assert_eq!(r.status, 431, "{}", r.head);
    let r = raw(&lab, dev, b"BLAH\r\n\r\n".to_vec()).await;
    assert_eq!(r.status, 400, "{}", r.head);
}

#[tokio::test]
async fn templates_can_be_overridden_from_the_configuration() {
    let lab = lab().await;
    let dir = lab.shared.conf_dir.join("portal/templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("aup.txt"), "Campus network rules: be kind.").unwrap();
    let r = get(&lab, ip(22), "127.0.73.1", "/captive-portal", None).await;
    assert!(
        r.body.contains("Campus network rules: be kind."),
        "{}",
        r.body
    );
}

#[test]
fn utc_dates() {
    assert_eq!(format_utc(0), "1970-01-01 00:00");
    assert_eq!(format_utc(1_709_164_800 + 3_660), "2024-02-29 01:01");
}

fn ldap_users() -> Vec<ironfence_testkit::slapd::LdapUser> {
    let u = |uid: &str, pw: &str, et: &str| ironfence_testkit::slapd::LdapUser {
        uid: uid.into(),
        password: pw.into(),
        employee_type: et.into(),
        mail: format!("{uid}@example.org"),
    };
    vec![
        u("alice", "alice-ldap-pw", "staff"),
        u("bob", "bob-ldap-pw", "student"),
        u("abe", "abe-ldap-pw", "contractor"),
    ]
}

fn ldap_auth(slapd: &ironfence_testkit::slapd::Slapd) -> String {
    use ironfence_testkit::slapd::{ADMIN_DN, ADMIN_PASSWORD, PEOPLE_DN};
    format!(
        "[ldap1]\ntype=LDAP\ndescription=Campus account\nhost={}\nport={}\nencryption=none\n\
         basedn={PEOPLE_DN}\nbinddn={ADMIN_DN}\npassword={ADMIN_PASSWORD}\nusernameattribute=uid\n\
         scope=sub\nsearchattributes=employeeType,mail\n\n\
         [ldap1 rule staff]\nclass=authentication\nmatch=all\ncondition0=employeeType,equals,staff\n\
         action0=set_role=gaming\naction1=set_access_duration=30D\n\n\
         [ldap1 rule students]\nclass=authentication\ncondition0=employeeType,equals,student\n\
         action0=set_role=guest\naction1=set_access_duration=1D\n",
        slapd.addr.ip(),
        slapd.addr.port()
    )
}

/// The LDAP source against a real slapd: service bind, search, user bind, attributes → rules.
#[tokio::test]
async fn ldap_source_against_slapd() {
    let slapd = ironfence_testkit::slapd::Slapd::start(Ipv4Addr::new(127, 0, 73, 2), &ldap_users())
        .unwrap();
    let lab = lab_with(&ldap_auth(&slapd)).await;
    let cfg = lab.shared.config();
    let src = cfg.authentication.source("ldap1").unwrap();
    let source = sources::for_conf(src, &lab.shared.store);
    let creds = |u: &str, p: &str| sources::Credentials {
        username: u.into(),
        password: p.into(),
        ..Default::default()
    };
    let who = source
        .authenticate(&creds("alice", "alice-ldap-pw"), 0)
        .await
        .unwrap();
    assert_eq!(who.pid, "alice");
    assert_eq!(who.attributes.get("employeetype"), ["staff"]);
    assert_eq!(who.email.as_deref(), Some("alice@example.org"));
    assert_eq!(
        rules::decide(src, &who.attributes, 0).unwrap().role,
        "gaming"
    );
    // Wrong password, unknown user, empty password (an LDAP unauthenticated bind): one error.
    for (u, p) in [
        ("alice", "wrong"),
        ("nobody", "alice-ldap-pw"),
        ("alice", ""),
    ] {
        assert_eq!(
            source.authenticate(&creds(u, p), 0).await.unwrap_err(),
            sources::AuthError::InvalidCredentials,
            "{u}/{p}"
        );
    }
    // Filter injection: "a*" must not find alice (or abe) and log in with her password.
    for u in ["a*", "*", "alice)(uid=*"] {
        assert_eq!(
            source
                .authenticate(&creds(u, "alice-ldap-pw"), 0)
                .await
                .unwrap_err(),
            sources::AuthError::InvalidCredentials,
            "{u}"
        );
    }
    // A user no rule matches (contractor) authenticates but is refused by the rules.
    let abe = source
        .authenticate(&creds("abe", "abe-ldap-pw"), 0)
        .await
        .unwrap();
    assert!(rules::decide(src, &abe.attributes, 0).is_err());

    // Through the portal: the device is registered with the mapped role.
    let dev = ip(30);
    lease(&lab, dev, mac(30)).await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/ldap1",
        &cookie,
        &format!("csrf={csrf}&username=bob&password=bob-ldap-pw"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let node = lab.shared.store.get_node(mac(30)).await.unwrap().unwrap();
    assert_eq!(
        (node.status, node.role.as_deref(), node.pid.as_str()),
        (NodeStatus::Registered, Some("guest"), "bob")
    );
}

/// A directory that does not answer: the page says so, and nothing is registered.
#[tokio::test]
async fn ldap_down_is_unavailable_not_a_login_error() {
    let port = std::net::TcpListener::bind("127.0.73.3:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let auth = format!(
        "[ldap1]\ntype=LDAP\nhost=127.0.73.3\nport={port}\nbasedn=dc=x\nconnection_timeout=2s\n\n\
         [ldap1 rule all]\naction0=set_role=guest\naction1=set_access_duration=1h\n"
    );
    let lab = lab_with(&auth).await;
    let dev = ip(31);
    lease(&lab, dev, mac(31)).await;
    let (cookie, csrf, _) = open_landing(&lab, dev).await;
    let r = post(
        &lab,
        dev,
        "/captive-portal/login/ldap1",
        &cookie,
        &format!("csrf={csrf}&username=bob&password=x"),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("login service is not available"),
        "{}",
        r.body
    );
}

/// A single server's own listeners: HTTP and HTTPS (conf/ssl/server.pem) on its registration
/// network address; devices are sent to the HTTPS URL and the cookie is Secure there (curl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_listens_on_http_and_https_with_server_pem() {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.73.5".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = format!("{}{}", cert.pem(), key.serialize_pem());
    let free = || {
        std::net::TcpListener::bind("127.0.73.5:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (http, https) = (free(), free());
    let pf = format!(
        "\n[interface reg0]\nip=127.0.73.5\nmask=255.255.255.0\ntype=internal\nenforcement=vlan\n\n\
         [ports]\nportal_http={http}\nportal_https={https}\n"
    );
    let lab = lab_full(AUTH, &pf, Some(&pem)).await;
    let (_stop, stop_rx) = watch::channel(false);
    let started = start(lab.shared.clone(), stop_rx).await.unwrap();
    assert_eq!(started.addrs.len(), 2, "{:?}", started.addrs);
    let curl = |url: String| {
        let out = std::process::Command::new("curl")
            .args(["-sk", "-i", "--max-time", "10", &url])
            .output()
            .expect("curl (apt-get install curl)");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let page = curl(format!("https://127.0.73.5:{https}/captive-portal"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let cookie = page
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP answers too, and tells devices the HTTPS portal URL.
    let api = curl(format!("http://127.0.73.5:{http}/captive-portal/api"));
    assert!(
        api.contains(&format!(
            "\"user-portal-url\":\"https://127.0.73.5:{https}/captive-portal\""
        )),
        "{api}"
    );
    let redirect = curl(format!("http://127.0.73.5:{http}/generate_204"));
    assert!(
        redirect.contains(&format!(
            "location: https://127.0.73.5:{https}/captive-portal"
        )),
        "{redirect}"
    );
}

/// X-Forwarded-For is believed only on the cluster's web listener and only from a member or
/// loopback; on a registration listener a device cannot claim another device's address.
#[tokio::test]
async fn forwarded_for_is_trusted_only_from_the_proxy() {
    let lab = lab().await;
    let portal = Portal::new(lab.shared.clone()).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_static("203.0.113.7, 192.0.2.44"),
    );
    let peer = |ip: &str| Peer {
        addr: SocketAddr::new(ip.parse().unwrap(), 40000),
        local: "127.0.73.1:8080".parse().unwrap(),
        tls: false,
    };
    let behind = Site {
        base_url: String::new(),
        trust_forwarded: true,
    };
    let direct = Site {
        base_url: String::new(),
        trust_forwarded: false,
    };
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    // haproxy on this server (loopback): the last hop it added is the device.
    assert_eq!(
        portal.client_ip(&peer("127.0.0.1"), &headers, &behind),
        ip("192.0.2.44")
    );
    // Anyone else, or a registration listener: the connection's own address.
    assert_eq!(
        portal.client_ip(&peer("198.51.100.9"), &headers, &behind),
        ip("198.51.100.9")
    );
    assert_eq!(
        portal.client_ip(&peer("127.0.0.1"), &headers, &direct),
        ip("127.0.0.1")
    );
    // Garbage in the header: the connection's address.
    headers.insert("x-forwarded-for", HeaderValue::from_static("not-an-ip"));
    assert_eq!(
        portal.client_ip(&peer("127.0.0.1"), &headers, &behind),
        ip("127.0.0.1")
    );
}
