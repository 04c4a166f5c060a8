//! Benchmark (ignored; `bench/admin_api.sh` runs it): device search latency over 100k devices
//! through a real HTTP listener (`web::serve`, the admin's listener code), on SQLite and on a
//! real MariaDB (testkit), with two same-run baselines: the same search straight on the store
//! (what HTTP, routing, query decoding and JSON add) and an empty JSON answer over the same
//! connection (the HTTP round trip alone).
//!
//! The route is the table's handler (`search_h`) without the gate: until the authentication
//! work lands there is no token to present. The gate adds one token check (an HMAC) per
//! request.

use super::*;
use axum::Router;
use axum::routing::get;
use ironfence_core::Node;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEVICES: u32 = 100_000;
const REQUESTS: usize = 1000;
/// This helper's loopback range.
const LISTEN: &str = "127.0.82.1:0";

fn device(i: u32) -> Node {
    let b = i.to_be_bytes();
    let mac = Mac([0x02, 0x10, b[0], b[1], b[2], b[3]]);
    let reg = i.is_multiple_of(3);
    Node {
        mac,
        status: if reg {
            NodeStatus::Registered
        } else {
            NodeStatus::Unregistered
        },
        role: reg.then(|| ["staff", "guest", "iot"][(i % 9 / 3) as usize].to_string()),
        pid: if reg {
            format!("user{}", i % 5000)
        } else {
            "default".into()
        },
        regdate: reg.then_some(1_700_000_000 + i64::from(i)),
        unregdate: None,
        last_seen: Some(1_700_000_000 + i64::from((i * 7919) % DEVICES)),
        notes: i
            .is_multiple_of(10)
            .then(|| format!("laptop of user{} floor {}", i % 5000, i % 12)),
    }
}

/// A keep-alive HTTP/1.1 client on one connection: GET, returns status and body length.
struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn get(&mut self, path: &str) -> (u16, usize) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n");
        self.tcp.write_all(req.as_bytes()).await.unwrap();
        self.buf.clear();
        let mut chunk = [0u8; 65536];
        let head_end = loop {
            let n = self.tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .unwrap()
            .to_ascii_lowercase();
        let status: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("content-length");
        while self.buf.len() < head_end + len {
            let n = self.tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        (status, len)
    }
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| us[((us.len() as f64 * p) as usize).min(us.len() - 1)];
    (at(0.50), at(0.99))
}

/// The searches measured: (name, query string).
const QUERIES: &[(&str, &str)] = &[
    ("first page, by MAC, with total", "limit=50"),
    (
        "registered, newest seen first",
        "status=reg&sort=last_seen&order=desc&limit=50",
    ),
    ("MAC prefix (4 octets)", "mac=02:10:00:01&limit=50"),
    ("owner", "pid=user42&limit=50"),
    ("role, deep page", "role=staff&limit=50&offset=5000"),
    ("text in notes (scan)", "q=user40%20floor&limit=50"),
];

async fn run(backend: &str, pf_extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let conf = crate::test_support::conf_dir(dir.path(), pf_extra, &[]);
    let shared = crate::test_support::shared_for(&conf).await;
    let t = Instant::now();
    let nodes: Vec<Node> = (0..DEVICES).map(device).collect();
    shared.store.bulk_import_nodes(&nodes).await.unwrap();
    println!(
        "[{backend}] imported {DEVICES} devices in {:.1?}",
        t.elapsed()
    );
    let state = Arc::new(AdminState::new(shared.clone(), false));
    let app = Router::new()
        .route("/api/v1/nodes", get(search_h))
        .route(
            "/api/v1/ping",
            get(|| async { axum::Json(serde_json::json!({})) }),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(LISTEN).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = crate::web::serve::serve(
        "bench",
        listener,
        None,
        app,
        crate::web::serve::Limits::default(),
        stopped,
    );
    let mut conn = Conn {
        tcp: TcpStream::connect(addr).await.unwrap(),
        buf: Vec::new(),
    };
    conn.tcp.set_nodelay(true).unwrap();

    let mut ping = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let (s, _) = conn.get("/api/v1/ping").await;
        ping.push(t.elapsed().as_secs_f64() * 1e6);
        assert_eq!(s, 200);
    }
    let (p50, p99) = percentiles(ping);
    println!(
        "[{backend}] {:<34} HTTP p50 {:>8.0} µs  p99 {:>8.0} µs",
        "baseline: empty JSON answer", p50, p99
    );

    for (name, qs) in QUERIES {
        let q: NodeQuery = crate::admin::json::parse_query(qs).unwrap();
        // Warm up (caches, prepared statements), and check the answer is real.
        let page = search(&state, q.clone()).await.unwrap();
        assert!(page.total > 0 && !page.nodes.is_empty(), "{name}: {page:?}");
        let plan = shared
            .store
            .explain_node_search(&NodeSearch {
                mac_prefix: q.mac.clone(),
                pid: q.pid.clone(),
                status: q.status.map(Into::into),
                role: q.role.clone(),
                text: q.q.clone(),
                sort: match q.sort {
                    Some(SortKey::LastSeen) => NodeSort::LastSeen,
                    Some(SortKey::Regdate) => NodeSort::Regdate,
                    _ => NodeSort::Mac,
                },
                descending: q.order == Some(Order::Desc),
                limit: q.limit.unwrap_or(50),
                offset: q.offset.unwrap_or(0),
                ..NodeSearch::default()
            })
            .await
            .unwrap();
        // A table scan costs 100 times an indexed page: fewer samples keep the run short.
        let n = if qs.contains("q=") {
            REQUESTS / 10
        } else {
            REQUESTS
        };
        let mut direct = Vec::with_capacity(n);
        let mut http = Vec::with_capacity(n);
        let mut bytes = 0;
        // The service function alone, then with the JSON encoding the handler adds.
        let mut encoded = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let p = search(&state, q.clone()).await.unwrap();
            direct.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(serde_json::to_vec(&p).unwrap());
            encoded.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            let (s, len) = conn.get(&format!("/api/v1/nodes?{qs}")).await;
            http.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(s, 200, "{name}");
            bytes = len;
        }
        let (d50, d99) = percentiles(direct);
        let (e50, _) = percentiles(encoded);
        let (h50, h99) = percentiles(http);
        println!(
            "[{backend}] {name:<34} HTTP p50 {h50:>8.0} µs  p99 {h99:>8.0} µs | in-process service fn p50 {d50:>8.0} µs  p99 {d99:>8.0} µs (+JSON p50 {e50:>6.0} µs) | total {} | {bytes} B",
            page.total
        );
        println!("[{backend}]     plan: {}", plan.join("; "));
    }
    stop.send(true).unwrap();
    let _ = server.await;
    shared.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/admin_api.sh"]
async fn admin_api_node_search_bench() {
    let which =
        std::env::var("IRONFENCE_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,mariadb".into());
    if which.contains("sqlite") {
        run("sqlite", "").await;
    }
    if which.contains("mariadb") {
        let db =
            tokio::task::block_in_place(ironfence_testkit::MariaDb::start).expect("start mariadbd");
        db.create_database("bench").unwrap();
        let extra = format!(
            "[database]\ntype = mysql\nhost = {}\nport = {}\nuser = {}\npass = {}\ndb = bench\n",
            db.host(),
            db.port(),
            db.user(),
            db.password()
        );
        run("mariadb", &extra).await;
        drop(db);
    }
}
