//! The MariaDB fixture starts a usable server and always cleans up, even when the test panics.

use ironfence_testkit::MariaDb;
use std::path::Path;
use std::time::{Duration, Instant};

fn process_alive(pid: u32) -> bool {
    // Our child is reaped by Drop, so /proc/<pid> disappears once it is gone.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn starts_serves_and_cleans_up_even_on_panic() {
    let started = Instant::now();
    let db = MariaDb::start().expect("start mariadbd");
    println!("mariadbd started in {:?}", started.elapsed());
    let pid = db.pid();
    let dir = db.dir().expect("dir").to_path_buf();
    assert!(process_alive(pid));
    assert_eq!(db.host(), "127.0.0.1");
    assert!(db.port() > 0);
    assert_eq!(db.user(), "ironfence");
    assert!(!db.password().is_empty());

    // The test account can use its database over TCP.
    let out = std::process::Command::new("mariadb")
        .args([
            "--no-defaults",
            "--protocol=TCP",
            "--batch",
            "--skip-column-names",
        ])
        .arg(format!("--host={}", db.host()))
        .arg(format!("--port={}", db.port()))
        .arg(format!("--user={}", db.user()))
        .arg(format!("--password={}", db.password()))
        .arg(db.database())
        .args([
            "-e",
            "CREATE TABLE t (id INT PRIMARY KEY); SELECT DATABASE()",
        ])
        .output()
        .expect("run mariadb client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ironfence_test"
    );

    db.create_database("second_db").expect("create_database");
    assert!(db.create_database("bad name; DROP").is_err());
    let dbs = db.admin_sql("SHOW DATABASES").expect("admin sql");
    assert!(dbs.lines().any(|l| l == "second_db"), "{dbs}");

    // A panic while the guard is alive still stops the server and removes the directory.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _db = db;
        panic!("simulated test failure");
    }));
    assert!(r.is_err());
    assert!(wait_gone(pid), "mariadbd {pid} still running after drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}
