//! [`StoreError`]: what can go wrong talking to the database, classified by what the caller
//! should do about it.

/// A storage failure, classified so callers can decide between "retry / fail over" and "give up".
///
/// Messages carry the database's own text (and MariaDB error number where there is one) so an
/// operator can act on them; they never contain passwords.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refuses writes: MariaDB `--read-only` (1290, 1836), a read-only transaction
    /// (1792, 1180), or a Galera node that is not (yet) part of the primary component
    /// ("WSREP has not yet prepared node for application use", 1047). Another node, or the same
    /// node a little later, may accept the write.
    #[error("database is read-only or not ready for writes (error {code}): {message}")]
    ReadOnly { code: u16, message: String },

    /// The database cannot be reached: connection refused or lost, pool exhausted, server
    /// shutting down.
    #[error("database unavailable: {message}")]
    Unavailable { message: String },

    /// A write conflicted with a concurrent one and was rolled back as a whole: InnoDB deadlock
    /// (1213) or a Galera certification failure (reported as 1213). Write methods of the MariaDB
    /// backend already retry these a few times before returning this error.
    #[error("write conflict, transaction rolled back (error {code}): {message}")]
    Deadlock { code: u16, message: String },

    /// The database is locked by another writer for longer than the busy timeout (SQLite
    /// `SQLITE_BUSY` / `SQLITE_LOCKED`), or a MariaDB lock wait timed out (1205).
    #[error("database busy: {message}")]
    Busy { message: String },

    /// The schema could not be brought to the version this binary needs, or the database was
    /// written by a newer ironfence.
    #[error("schema migration: {message}")]
    Migration { message: String },

    /// Anything else: SQL errors, constraint violations, unreadable stored values, I/O errors
    /// creating the database file.
    #[error("store error: {message}")]
    Other { message: String },
}

impl StoreError {
    /// `true` when the same operation may succeed if retried later or against another node
    /// (read-only / unavailable / write conflict / busy). Schema and data errors are permanent.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::ReadOnly { .. }
                | StoreError::Unavailable { .. }
                | StoreError::Deadlock { .. }
                | StoreError::Busy { .. }
        )
    }

    pub fn other(message: impl Into<String>) -> StoreError {
        StoreError::Other {
            message: message.into(),
        }
    }

    pub(crate) fn migration(message: impl Into<String>) -> StoreError {
        StoreError::Migration {
            message: message.into(),
        }
    }
}

/// MariaDB/MySQL server error numbers the store classifies.
pub(crate) mod mysql_codes {
    /// ER_LOCK_DEADLOCK; also what Galera reports for a certification failure.
    pub const DEADLOCK: u16 = 1213;
    /// ER_LOCK_WAIT_TIMEOUT.
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// ER_UNKNOWN_COM_ERROR: "WSREP has not yet prepared node for application use".
    pub const WSREP_NOT_READY: u16 = 1047;
    /// ER_OPTION_PREVENTS_STATEMENT: `--read-only`.
    pub const OPTION_PREVENTS_STATEMENT: u16 = 1290;
    /// ER_ERROR_DURING_COMMIT.
    pub const ERROR_DURING_COMMIT: u16 = 1180;
    /// ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
    pub const READ_ONLY_TRANSACTION: u16 = 1792;
    /// ER_READ_ONLY_MODE.
    pub const READ_ONLY_MODE: u16 = 1836;
    /// ER_CON_COUNT_ERROR: too many connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 1040;
    /// ER_SERVER_SHUTDOWN.
    pub const SERVER_SHUTDOWN: u16 = 1053;
    /// ER_CONNECTION_KILLED.
    pub const CONNECTION_KILLED: u16 = 1927;
}

/// Classifies a MariaDB server error number.
pub(crate) fn classify_mysql(code: u16, message: &str) -> StoreError {
    use mysql_codes::*;
    let message = message.to_string();
    match code {
        DEADLOCK => StoreError::Deadlock { code, message },
        LOCK_WAIT_TIMEOUT => StoreError::Busy {
            message: format!("error {code}: {message}"),
        },
        WSREP_NOT_READY
        | OPTION_PREVENTS_STATEMENT
        | ERROR_DURING_COMMIT
        | READ_ONLY_TRANSACTION
        | READ_ONLY_MODE => StoreError::ReadOnly { code, message },
        TOO_MANY_CONNECTIONS | SERVER_SHUTDOWN | CONNECTION_KILLED => StoreError::Unavailable {
            message: format!("error {code}: {message}"),
        },
        _ => StoreError::Other {
            message: format!("error {code}: {message}"),
        },
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) => {
                if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    classify_mysql(my.number(), my.message())
                } else {
                    StoreError::other(e.to_string())
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => StoreError::Unavailable {
                message: e.to_string(),
            },
            _ => StoreError::other(e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                StoreError::Busy {
                    message: e.to_string(),
                }
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ReadOnly => {
                StoreError::ReadOnly {
                    code: 0,
                    message: e.to_string(),
                }
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::CannotOpen => {
                StoreError::Unavailable {
                    message: e.to_string(),
                }
            }
            _ => StoreError::other(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_codes_are_classified() {
        assert!(matches!(
            classify_mysql(1213, "Deadlock found"),
            StoreError::Deadlock { code: 1213, .. }
        ));
        for code in [1047, 1290, 1180, 1792, 1836] {
            let e = classify_mysql(code, "x");
            assert!(matches!(e, StoreError::ReadOnly { .. }), "{code}: {e}");
            assert!(e.is_retryable());
        }
        assert!(matches!(classify_mysql(1205, "x"), StoreError::Busy { .. }));
        assert!(matches!(
            classify_mysql(1053, "x"),
            StoreError::Unavailable { .. }
        ));
        let e = classify_mysql(1064, "You have an error in your SQL syntax");
        assert!(matches!(e, StoreError::Other { .. }));
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("1064"));
    }
}
