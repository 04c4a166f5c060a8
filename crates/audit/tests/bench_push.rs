//! Micro-benchmark of the request path's audit cost: build a record as `radius.rs` does
//! (strings copied out of the packet) and push it into the sink, with the real writer thread
//! appending to a real directory. Prints figures, asserts none about time (machines differ):
//!
//! ```text
//! cargo test -p ironfence-audit --release --test bench_push -- --ignored --nocapture
//! ```

use ironfence_audit::{AuditRecord, Limits, RequestIds, RequestType, Sink, now_us};
use ironfence_core::Mac;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

fn cpu_s(who: nix::sys::resource::UsageWho) -> f64 {
    let u = nix::sys::resource::getrusage(who).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

/// CPU time of the calling thread (microsecond resolution).
fn thread_cpu_s() -> f64 {
    cpu_s(nix::sys::resource::UsageWho::RUSAGE_THREAD)
}

/// CPU time of the whole process (every thread, the writer included).
fn process_cpu_s() -> f64 {
    cpu_s(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

fn build(ids: &RequestIds, i: u64) -> AuditRecord {
    let mac = Mac([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    let text = mac.to_string();
    AuditRecord {
        time_us: now_us(),
        request_id: ids.next(),
        mac: Some(mac),
        user_name: Some(text.clone()),
        nas_ip: "192.0.2.10".to_string(),
        nas_port: Some("12".to_string()),
        request_type: RequestType::Auth,
        outcome: "accept".to_string(),
        reason: "registered".to_string(),
        vlan: Some("100".to_string()),
        role: Some("default".to_string()),
        switch_id: Some("192.0.2.10".to_string()),
        calling_station_id: Some(text),
        called_station_id: None,
    }
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn request_path_cost_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, _) = Sink::start(
        &dir.path().join("audit"),
        Limits::default(),
        ironfence_audit::sink::DEFAULT_CAPACITY,
    )
    .unwrap();
    let ids = RequestIds::default();
    const N: u64 = 2_000_000;
    // Pushed in chunks smaller than the channel, each waited for: the request path's cost
    // when the writer keeps up (sustained load), not time spent waiting for it.
    const CHUNK: usize = ironfence_audit::sink::DEFAULT_CAPACITY / 2;
    for i in 0..50_000 {
        sink.push(build(&ids, i));
    }
    assert!(sink.flush());
    // CPU time, not wall time: this machine is shared, wall time measures the neighbours.
    // Per chunk: build CHUNK records as radius.rs does, push them, wait until written.
    let (mut build_s, mut push_s) = (0.0, 0.0);
    let (p0, wall) = (process_cpu_s(), Instant::now());
    let mut chunk = Vec::with_capacity(CHUNK);
    for c in 0..N / CHUNK as u64 {
        let t = thread_cpu_s();
        chunk.extend((0..CHUNK as u64).map(|i| build(&ids, c * CHUNK as u64 + i)));
        let t1 = thread_cpu_s();
        for r in chunk.drain(..) {
            sink.push(r);
        }
        let t2 = thread_cpu_s();
        build_s += t1 - t;
        push_s += t2 - t1;
        assert!(sink.flush());
    }
    let n = (N / CHUNK as u64 * CHUNK as u64) as f64;
    let build_ns = build_s * 1e9 / n;
    let push_ns = push_s * 1e9 / n;
    let writer_ns = (process_cpu_s() - p0) * 1e9 / n - build_ns - push_ns;
    let wall_ns = wall.elapsed().as_nanos() as f64 / n;
    let stats = sink.stats().clone();
    sink.close();
    println!(
        "audit log, {N} records, 1 producer, writer thread to {}:",
        dir.path().display()
    );
    println!("  request path: build the record      {build_ns:6.0} ns CPU/record");
    println!("  request path: push into the channel {push_ns:6.0} ns CPU/record");
    println!("  writer thread: encode + write(2)    {writer_ns:6.0} ns CPU/record");
    println!("  wall time, build + push + written    {wall_ns:6.0} ns/record");
    println!(
        "  {:.0} bytes/record, producer waited {} times ({:.1} ms)",
        stats.bytes_written.load(Relaxed) as f64 / (n + 50_000.0),
        stats.blocked_pushes.load(Relaxed),
        stats.blocked_ns.load(Relaxed) as f64 / 1e6
    );
    assert_eq!(stats.records_written.load(Relaxed), n as u64 + 50_000);
}
