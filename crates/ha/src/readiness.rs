//! Readiness gating: a server holds a VIP only while it can serve what arrives there.
//!
//! Ready = its RADIUS service answers, its database is writable and its configuration is
//! current (it runs the files on disk and no conflict is pending). The value goes to
//! keepalived's track file (see [`crate::keepalived::UNREADY_WEIGHT`]): an unready server drops
//! below every ready one. When every member is unready, cluster.conf order still elects one,
//! so "writable, or the cluster has no writable member at all" holds by construction.

/// The three inputs, each measured by the server shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The RADIUS service answers (its receive loops run and answer a self-probe).
    pub radius: bool,
    /// The database takes writes (not in read-only / degraded mode).
    pub db_writable: bool,
    /// The configuration in force is the one on disk, and no conflict is pending.
    pub config_current: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.radius && self.db_writable && self.config_current
    }

    /// The track file's content: `0` (no priority change) when ready, `1` (× weight −100)
    /// when not.
    pub fn track_value(&self) -> &'static str {
        if self.ready() { "0\n" } else { "1\n" }
    }

    /// What is missing, for logs and `cluster status` (empty when ready).
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.radius {
            out.push("RADIUS does not answer");
        }
        if !self.db_writable {
            out.push("database read-only");
        }
        if !self.config_current {
            out.push("configuration not current");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn any_missing_input_makes_the_server_unready() {
        for bits in 0..8u8 {
            let r = Readiness {
                radius: bits & 1 != 0,
                db_writable: bits & 2 != 0,
                config_current: bits & 4 != 0,
            };
            assert_eq!(r.ready(), bits == 7, "{r:?}");
            assert_eq!(r.track_value(), if bits == 7 { "0\n" } else { "1\n" });
            assert_eq!(r.reasons().len(), bits.count_zeros() as usize - 5, "{r:?}");
        }
    }
}
