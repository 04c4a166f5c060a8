//! Versioned schema migrations.
//!
//! [`MIGRATIONS`] is an ordered list; the `schema_version` table records every version applied
//! (one row per version, with its description and when it was applied). On open, each backend
//! applies the migrations newer than the database's highest recorded version, in order, and
//! refuses a database whose version is newer than [`LATEST_VERSION`] (written by a newer
//! ironfence: running an old binary against it could corrupt data it does not understand).
//!
//! * **SQLite**: each migration runs in one `BEGIN IMMEDIATE` transaction together with the
//!   insertion of its `schema_version` row, so it is applied completely or not at all; the
//!   version is re-checked inside the transaction so two processes opening the same file at once
//!   do not both apply it.
//! * **MariaDB**: DDL statements commit implicitly, so a migration cannot be atomic. Instead every
//!   statement is idempotent (`CREATE TABLE IF NOT EXISTS` with indexes declared inline,
//!   `INSERT … ON DUPLICATE KEY UPDATE`), statements run one by one, and the version row is
//!   recorded right after the migration's last statement. A crash half-way leaves the version
//!   unrecorded and the next start re-runs the whole migration harmlessly. Concurrent starts are
//!   serialised with `GET_LOCK` (node-local on Galera, where DDL is replicated in total order
//!   anyway and the idempotent statements make a duplicate run harmless).
//!
//! Rules for new migrations: append only, never edit a released one, keep both dialects
//! equivalent, keep every MariaDB statement idempotent, times are BIGINT UNIX seconds.

/// One schema change, in both dialects. Each SQL entry is a single statement.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub description: &'static str,
    pub sqlite: &'static [&'static str],
    pub mysql: &'static [&'static str],
}

/// The schema version this binary writes and understands.
pub const LATEST_VERSION: u32 = 10;

pub(crate) const SQLITE_SCHEMA_VERSION_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)";

pub(crate) const MYSQL_SCHEMA_VERSION_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version INT UNSIGNED NOT NULL PRIMARY KEY,
    description VARCHAR(255) NOT NULL,
    applied_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// All migrations, oldest first. Versions are consecutive from 1.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "nodes, people and security events",
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS person (
                pid TEXT NOT NULL PRIMARY KEY,
                firstname TEXT,
                lastname TEXT,
                email TEXT,
                notes TEXT,
                created_at INTEGER NOT NULL
            ) WITHOUT ROWID",
            "INSERT INTO person (pid, notes, created_at)
                VALUES ('default', 'Owner of unclaimed devices', unixepoch())
                ON CONFLICT (pid) DO NOTHING",
            "CREATE TABLE IF NOT EXISTS node (
                mac TEXT NOT NULL PRIMARY KEY,
                pid TEXT NOT NULL DEFAULT 'default' REFERENCES person (pid) ON UPDATE CASCADE,
                category TEXT,
                status TEXT NOT NULL DEFAULT 'unreg' CHECK (status IN ('reg', 'unreg', 'pending')),
                regdate INTEGER,
                unregdate INTEGER,
                last_seen INTEGER,
                detect_date INTEGER,
                notes TEXT
            ) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS node_pid ON node (pid)",
            "CREATE INDEX IF NOT EXISTS node_category ON node (category)",
            "CREATE TABLE IF NOT EXISTS security_event (
                id INTEGER PRIMARY KEY,
                mac TEXT NOT NULL REFERENCES node (mac) ON DELETE CASCADE,
                security_event_id INTEGER NOT NULL,
                status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
                start_date INTEGER NOT NULL,
                release_date INTEGER,
                notes TEXT
            )",
            "CREATE INDEX IF NOT EXISTS security_event_mac_status ON security_event (mac, status)",
        ],
        mysql: &[
            "CREATE TABLE IF NOT EXISTS person (
                pid VARCHAR(255) NOT NULL PRIMARY KEY,
                firstname VARCHAR(255) NULL,
                lastname VARCHAR(255) NULL,
                email VARCHAR(255) NULL,
                notes TEXT NULL,
                created_at BIGINT NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            "INSERT INTO person (pid, notes, created_at)
                VALUES ('default', 'Owner of unclaimed devices', UNIX_TIMESTAMP())
                ON DUPLICATE KEY UPDATE pid = pid",
            "CREATE TABLE IF NOT EXISTS node (
                mac VARCHAR(17) NOT NULL PRIMARY KEY,
                pid VARCHAR(255) NOT NULL DEFAULT 'default',
                category VARCHAR(255) NULL,
                status VARCHAR(16) NOT NULL DEFAULT 'unreg',
                regdate BIGINT NULL,
                unregdate BIGINT NULL,
                last_seen BIGINT NULL,
                detect_date BIGINT NULL,
                notes TEXT NULL,
                KEY node_pid (pid),
                KEY node_category (category),
                CONSTRAINT node_status_valid CHECK (status IN ('reg', 'unreg', 'pending')),
                CONSTRAINT node_pid_fk FOREIGN KEY (pid) REFERENCES person (pid) ON UPDATE CASCADE
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            "CREATE TABLE IF NOT EXISTS security_event (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                mac VARCHAR(17) NOT NULL,
                security_event_id INT UNSIGNED NOT NULL,
                status VARCHAR(16) NOT NULL DEFAULT 'open',
                start_date BIGINT NOT NULL,
                release_date BIGINT NULL,
                notes TEXT NULL,
                KEY security_event_mac_status (mac, status),
                CONSTRAINT security_event_status_valid CHECK (status IN ('open', 'closed')),
                CONSTRAINT security_event_mac_fk FOREIGN KEY (mac) REFERENCES node (mac)
                    ON DELETE CASCADE ON UPDATE CASCADE
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        ],
    },
    Migration {
        version: 2,
        description: "location log, IPv4 log and RADIUS audit log",
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS locationlog (
                id INTEGER PRIMARY KEY,
                mac TEXT NOT NULL,
                switch_id TEXT NOT NULL,
                switch_ip TEXT NOT NULL,
                port TEXT,
                vlan TEXT,
                role TEXT,
                ssid TEXT,
                session_id TEXT,
                username TEXT,
                connection_type TEXT,
                start_time INTEGER NOT NULL,
                end_time INTEGER
            )",
            "CREATE INDEX IF NOT EXISTS locationlog_mac_end_time ON locationlog (mac, end_time)",
            "CREATE INDEX IF NOT EXISTS locationlog_switch_ip_end_time
                ON locationlog (switch_ip, end_time)",
            "CREATE TABLE IF NOT EXISTS ip4log (
                ip TEXT NOT NULL PRIMARY KEY,
                mac TEXT NOT NULL,
                start_time INTEGER NOT NULL,
                end_time INTEGER
            ) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS ip4log_mac_end_time ON ip4log (mac, end_time)",
            "CREATE TABLE IF NOT EXISTS radius_audit_log (
                id INTEGER PRIMARY KEY,
                created_at INTEGER NOT NULL,
                mac TEXT,
                user_name TEXT,
                nas_ip TEXT NOT NULL,
                nas_port TEXT,
                request_type TEXT NOT NULL,
                outcome TEXT NOT NULL,
                reason TEXT NOT NULL,
                vlan TEXT,
                role TEXT,
                switch_id TEXT,
                calling_station_id TEXT,
                called_station_id TEXT
            )",
            "CREATE INDEX IF NOT EXISTS radius_audit_log_created_at ON radius_audit_log (created_at)",
            "CREATE INDEX IF NOT EXISTS radius_audit_log_mac ON radius_audit_log (mac)",
        ],
        mysql: &[
            "CREATE TABLE IF NOT EXISTS locationlog (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                mac VARCHAR(17) NOT NULL,
                switch_id VARCHAR(255) NOT NULL,
                switch_ip VARCHAR(64) NOT NULL,
                port VARCHAR(255) NULL,
                vlan VARCHAR(255) NULL,
                role VARCHAR(255) NULL,
                ssid VARCHAR(255) NULL,
                session_id VARCHAR(255) NULL,
                username VARCHAR(255) NULL,
                connection_type VARCHAR(64) NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT NULL,
                KEY locationlog_mac_end_time (mac, end_time),
                KEY locationlog_switch_ip_end_time (switch_ip, end_time)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            "CREATE TABLE IF NOT EXISTS ip4log (
                ip VARCHAR(15) NOT NULL PRIMARY KEY,
                mac VARCHAR(17) NOT NULL,
                start_time BIGINT NOT NULL,
                end_time BIGINT NULL,
                KEY ip4log_mac_end_time (mac, end_time)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            "CREATE TABLE IF NOT EXISTS radius_audit_log (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                created_at BIGINT NOT NULL,
                mac VARCHAR(17) NULL,
                user_name VARCHAR(255) NULL,
                nas_ip VARCHAR(64) NOT NULL,
                nas_port VARCHAR(255) NULL,
                request_type VARCHAR(16) NOT NULL,
                outcome VARCHAR(32) NOT NULL,
                reason VARCHAR(1024) NOT NULL,
                vlan VARCHAR(255) NULL,
                role VARCHAR(255) NULL,
                switch_id VARCHAR(255) NULL,
                calling_station_id VARCHAR(255) NULL,
                called_station_id VARCHAR(255) NULL,
                KEY radius_audit_log_created_at (created_at),
                KEY radius_audit_log_mac (mac)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        ],
    },
    Migration {
        version: 3,
        description: "SQLite: the RADIUS audit log moves to its own file",
        // The audit log is written continuously; in the main file every commit would
        // invalidate the node readers' cache. See sqlite.rs `audit_path`. MariaDB keeps it.
        sqlite: &["DROP TABLE IF EXISTS radius_audit_log"],
        mysql: &[],
    },
    Migration {
        version: 4,
        description: "idempotency keys of replayed accounting-spool records",
        // A server replaying its local spool records each record's key in the same
        // transaction as the record's effects, so a replay interrupted by a crash (or a
        // record spooled twice) is never applied twice. Pruned after a retention period.
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS spool_applied (
                idem_key BLOB NOT NULL PRIMARY KEY,
                applied_at INTEGER NOT NULL
            ) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS spool_applied_at ON spool_applied (applied_at)",
        ],
        mysql: &["CREATE TABLE IF NOT EXISTS spool_applied (
                idem_key BINARY(32) NOT NULL PRIMARY KEY,
                applied_at BIGINT NOT NULL,
                KEY spool_applied_at (applied_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"],
    },
    Migration {
        version: 5,
        description: "node change log for the per-server node read caches",
        // Every write that changes what `node_view` returns inserts a row here in its own
        // transaction; each server polls it to invalidate its cache (see node_cache.rs).
        // AUTOINCREMENT on SQLite: ids are never reused after pruning (a reused id would hide
        // a change from a poller whose floor is above it).
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS node_change (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                mac TEXT NOT NULL,
                changed_at INTEGER NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS node_change_changed_at ON node_change (changed_at)",
        ],
        mysql: &["CREATE TABLE IF NOT EXISTS node_change (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                mac VARCHAR(17) NOT NULL,
                changed_at BIGINT NOT NULL,
                KEY node_change_changed_at (changed_at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"],
    },
    Migration {
        version: 6,
        description: "DHCP leases of the registration and isolation networks",
        // One row per address (primary key) and at most one per client (unique key): the two
        // keys are what make concurrent allocations on several servers safe (see dhcp.rs).
        // A declined address has no MAC (NULLs do not collide in a unique key).
        sqlite: &["CREATE TABLE IF NOT EXISTS dhcp_lease (
                network TEXT NOT NULL,
                ip TEXT NOT NULL,
                mac TEXT,
                state TEXT NOT NULL
                    CHECK (state IN ('offered', 'bound', 'released', 'declined')),
                expires_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                hostname TEXT,
                PRIMARY KEY (network, ip),
                UNIQUE (network, mac)
            ) WITHOUT ROWID"],
        mysql: &["CREATE TABLE IF NOT EXISTS dhcp_lease (
                network VARCHAR(15) NOT NULL,
                ip VARCHAR(15) NOT NULL,
                mac VARCHAR(17) NULL,
                state VARCHAR(16) NOT NULL,
                expires_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                hostname VARCHAR(255) NULL,
                PRIMARY KEY (network, ip),
                UNIQUE KEY dhcp_lease_network_mac (network, mac),
                CONSTRAINT dhcp_lease_state_valid
                    CHECK (state IN ('offered', 'bound', 'released', 'declined'))
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"],
    },
    Migration {
        version: 7,
        description: "captive portal: local users (PacketFence's password table)",
        // PacketFence's `password` table, the columns the portal uses: a hash (argon2id, or an
        // imported bcrypt hash), the validity window (UNIX seconds). ip4log's primary key
        // (ip) already serves the portal's IP → MAC lookup.
        sqlite: &["CREATE TABLE IF NOT EXISTS password (
                pid TEXT NOT NULL PRIMARY KEY
                    REFERENCES person (pid) ON DELETE CASCADE ON UPDATE CASCADE,
                password TEXT NOT NULL,
                valid_from INTEGER,
                expiration INTEGER,
                created_at INTEGER NOT NULL
            ) WITHOUT ROWID"],
        mysql: &["CREATE TABLE IF NOT EXISTS password (
                pid VARCHAR(255) NOT NULL PRIMARY KEY,
                password VARCHAR(255) NOT NULL,
                valid_from BIGINT NULL,
                expiration BIGINT NULL,
                created_at BIGINT NOT NULL,
                CONSTRAINT password_pid_fk FOREIGN KEY (pid) REFERENCES person (pid)
                    ON DELETE CASCADE ON UPDATE CASCADE
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"],
    },
    Migration {
        version: 8,
        description: "administration: admin audit log and revoked admin sessions",
        // admin_audit: who changed what, field by field (`changes` is a JSON array of
        // {field, before, after}, secrets already redacted). `idem_key` makes the replay of an
        // entry spooled while the database was read-only apply once. admin_session_revoked:
        // logged-out sessions (tokens are stateless), kept until the token would have expired
        // anyway.
        sqlite: &[
            "CREATE TABLE IF NOT EXISTS admin_audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at INTEGER NOT NULL,
                server TEXT NOT NULL,
                account TEXT NOT NULL,
                client TEXT NOT NULL,
                session TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                changes TEXT NOT NULL,
                result TEXT NOT NULL,
                idem_key TEXT NOT NULL UNIQUE
            )",
            "CREATE INDEX IF NOT EXISTS admin_audit_at ON admin_audit (at)",
            "CREATE INDEX IF NOT EXISTS admin_audit_target ON admin_audit (target, at)",
            "CREATE TABLE IF NOT EXISTS admin_session_revoked (
                session TEXT NOT NULL PRIMARY KEY,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID",
        ],
        mysql: &[
            "CREATE TABLE IF NOT EXISTS admin_audit (
                id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
                at BIGINT NOT NULL,
                server VARCHAR(255) NOT NULL,
                account VARCHAR(255) NOT NULL,
                client VARCHAR(64) NOT NULL,
                session VARCHAR(64) NOT NULL,
                action VARCHAR(64) NOT NULL,
                target VARCHAR(512) NOT NULL,
                changes MEDIUMTEXT NOT NULL,
                result VARCHAR(255) NOT NULL,
                idem_key CHAR(64) NOT NULL,
                UNIQUE KEY admin_audit_idem_key (idem_key),
                KEY admin_audit_at (at),
                KEY admin_audit_target (target(191), at)
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            "CREATE TABLE IF NOT EXISTS admin_session_revoked (
                session VARCHAR(64) NOT NULL PRIMARY KEY,
                expires_at BIGINT NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        ],
    },
    Migration {
        version: 9,
        description: "administration: node computername, node search indexes",
        // The admin's device search sorts and filters on these (see admin_nodes.rs): last seen
        // and registration date as sort keys (a page is read from the index, not sorted);
        // status with last seen for "registered (or not), newest first" and the count by
        // status. The MAC prefix filter uses the primary key, the owner and
        // role filters the v1 indexes. computername: PacketFence's node column.
        sqlite: &[
            "ALTER TABLE node ADD COLUMN computername TEXT",
            "CREATE INDEX IF NOT EXISTS node_last_seen ON node (last_seen)",
            "CREATE INDEX IF NOT EXISTS node_regdate ON node (regdate)",
            "CREATE INDEX IF NOT EXISTS node_status_last_seen ON node (status, last_seen)",
        ],
        mysql: &[
            "ALTER TABLE node ADD COLUMN IF NOT EXISTS computername VARCHAR(255) NULL",
            "CREATE INDEX IF NOT EXISTS node_last_seen ON node (last_seen)",
            "CREATE INDEX IF NOT EXISTS node_regdate ON node (regdate)",
            "CREATE INDEX IF NOT EXISTS node_status_last_seen ON node (status, last_seen)",
        ],
    },
    Migration {
        version: 10,
        description: "802.1X: NT hash of local users' passwords (PEAP / EAP-MSCHAPv2)",
        // MSCHAPv2 needs MD4(UTF-16LE(password)), which the argon2id or bcrypt hash cannot
        // give: kept beside it (32 hex digits), written whenever the clear password is known
        // and cleared when a password is set without it (never a stale one).
        sqlite: &["ALTER TABLE password ADD COLUMN nt_hash TEXT"],
        mysql: &["ALTER TABLE password ADD COLUMN IF NOT EXISTS nt_hash CHAR(32) NULL"],
    },
];

/// The error for a database written by a newer ironfence.
pub(crate) fn newer_schema_error(found: u32) -> crate::StoreError {
    crate::StoreError::migration(format!(
        "database schema version {found} is newer than this ironfence understands \
         (latest known: {LATEST_VERSION}); it was written by a newer release — upgrade this \
         server (downgrading the schema is not supported)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_latest_matches() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.description);
            // A migration may concern one backend only (version 3), never none.
            assert!(
                !m.sqlite.is_empty() || !m.mysql.is_empty(),
                "{}",
                m.description
            );
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_VERSION));
    }

    #[test]
    fn mysql_statements_are_idempotent() {
        for m in MIGRATIONS {
            for s in m.mysql {
                let s = s.trim_start();
                assert!(
                    s.starts_with("CREATE TABLE IF NOT EXISTS")
                        || s.starts_with("CREATE INDEX IF NOT EXISTS")
                        || (s.starts_with("ALTER TABLE") && s.contains(" IF NOT EXISTS "))
                        || s.contains("ON DUPLICATE KEY UPDATE"),
                    "migration {} statement is not idempotent: {s}",
                    m.version
                );
            }
        }
    }
}
