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

/// utime + stime of this process, in seconds (from /proc, clock ticks of 10 ms).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
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
    const N: u64 = 1_000_000;
    // Warm up (page cache, channel slots).
    for i in 0..50_000 {
        sink.push(build(&ids, i));
    }
    assert!(sink.flush());
    let records: Vec<AuditRecord> = (0..N).map(|i| build(&ids, i)).collect();
    let t = Instant::now();
    let built: Vec<AuditRecord> = (0..N).map(|i| build(&ids, i)).collect();
    let build_ns = t.elapsed().as_nanos() as f64 / N as f64;
    drop(built);
    let cpu0 = process_cpu_s();
    let t = Instant::now();
    for r in records {
        sink.push(r);
    }
    let push_ns = t.elapsed().as_nanos() as f64 / N as f64;
    assert!(sink.flush());
    let all_ns = t.elapsed().as_nanos() as f64 / N as f64;
    let cpu_ns = (process_cpu_s() - cpu0) * 1e9 / N as f64;
    let stats = sink.stats().clone();
    sink.close();
    println!(
        "audit request path, {N} records, 1 producer, writer thread to {}:",
        dir.path().display()
    );
    println!("  build the record (strings copied):  {build_ns:8.0} ns/record");
    println!("  push into the channel:              {push_ns:8.0} ns/record (wall, producer)");
    println!("  push + written to the kernel:       {all_ns:8.0} ns/record (wall)");
    println!("  process CPU (producer + writer):    {cpu_ns:8.0} ns/record");
    println!(
        "  bytes/record {:.0}, producer waited {} times, {:.1} ms in all",
        stats.bytes_written.load(Relaxed) as f64 / (N + 50_000) as f64,
        stats.blocked_pushes.load(Relaxed),
        stats.blocked_ns.load(Relaxed) as f64 / 1e6
    );
    assert_eq!(stats.records_written.load(Relaxed), N + 50_000);
}
