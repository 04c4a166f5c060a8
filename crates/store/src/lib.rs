//! Node, location log, security event and audit storage on SQLite (embedded) or MariaDB, with versioned migrations.
