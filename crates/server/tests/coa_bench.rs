//! CoA round-trip benchmark (issue 10): `send_dynauth` to the NAS stand-in, against baselines
//! measured in the same run to the same stand-in: a plain Status-Server exchange from this
//! process (a new socket each time, as `send_dynauth` does), and radclient's Status-Server.
//! Prints figures; asserts only that every exchange was acknowledged.
//!
//! `cargo test --release -p ironfence-server --test coa_bench -- --ignored --nocapture`
//! (`COA_BENCH_N` exchanges, default 2000).

use ironfence_config::dynauth::{DynAuthSettings, RadiusDisconnect};
use ironfence_core::Mac;
use ironfence_radius::dynauth::RetryPolicy;
use ironfence_radius::{Code, PacketBuilder, verify_response};
use ironfence_server::coa::{Target, send_dynauth};
use ironfence_server::metrics::Metrics;
use ironfence_testkit::nas::{NasConfig, NasStandIn};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"coa-bench-test-fixture-secret";

fn summary(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    let mean = d.iter().map(|x| us(*x)).sum::<f64>() / d.len() as f64;
    println!(
        "{name:<48} n={:<6} median {:>8.1} µs  p99 {:>8.1} µs  mean {:>8.1} µs",
        d.len(),
        us(d[d.len() / 2]),
        us(d[(d.len() * 99 / 100).min(d.len() - 1)]),
        mean
    );
}

async fn status_server(to: SocketAddr) -> Duration {
    let t = Instant::now();
    let s = tokio::net::UdpSocket::bind("127.0.74.1:0").await.unwrap();
    s.connect(to).await.unwrap();
    let mut auth = [0u8; 16];
    getrandom::fill(&mut auth).unwrap();
    let id = auth[0];
    let req = PacketBuilder::new(Code::StatusServer, id).encode_request(auth, SECRET, true);
    s.send(&req).await.unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).await.unwrap();
    verify_response(&buf[..n], id, &auth, SECRET).expect("verified answer");
    t.elapsed()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn coa_round_trip() {
    let n: usize = std::env::var("COA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let nas = NasStandIn::start("127.0.74.30:0".parse().unwrap(), NasConfig::new(SECRET)).unwrap();
    let to = nas.addr();
    let m = Metrics::new();
    let target = |mode| Target {
        mac: Mac([2, 0, 0, 0, 0x74, 0x30]),
        nas_ip: IpAddr::from([127, 0, 74, 30]),
        destination: to.ip(),
        source: Some(IpAddr::from([127, 0, 74, 1])),
        fallback_source: None,
        secret: SECRET.to_vec(),
        settings: DynAuthSettings {
            radius_disconnect: mode,
            coa_port: to.port(),
            disconnect_port: to.port(),
            ..DynAuthSettings::default()
        },
    };
    let coa = target(RadiusDisconnect::Coa);
    let policy = RetryPolicy::default();
    for _ in 0..100 {
        assert!(send_dynauth(&coa, policy, &m.coa).await.unwrap().acked());
        status_server(to).await;
    }
    // Interleaved so that both see the same machine load.
    let (mut c, mut s) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        let o = send_dynauth(&coa, policy, &m.coa).await.unwrap();
        c.push(t.elapsed());
        assert!(o.acked());
        s.push(status_server(to).await);
    }
    println!("\nCoA round trip to the NAS stand-in ({to}), {n} sequential exchanges");
    summary("CoA-Request → CoA-ACK (send_dynauth)", c);
    summary("baseline: Status-Server, same process, new socket", s);

    // radclient's Status-Server: wall time of `-c n` sequential requests (one process).
    let t = Instant::now();
    let out = std::process::Command::new("radclient")
        .args(["-q", "-c", &n.to_string(), "-p", "1", "-r", "1", "-t", "2"])
        .arg(to.to_string())
        .arg("status")
        .arg(std::str::from_utf8(SECRET).unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"Message-Authenticator = 0x00\n")?;
            child.wait_with_output()
        })
        .expect("radclient (freeradius-utils)");
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{:<48} n={n:<6} mean {:>8.1} µs (wall time / n, process start included)",
        "baseline: radclient Status-Server",
        wall.as_secs_f64() * 1e6 / n as f64
    );
}
