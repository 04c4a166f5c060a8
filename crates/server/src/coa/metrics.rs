//! CoA / Disconnect metrics (`ironfence_coa_*`) and the location-at-auth counter.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Every way a CoA / Disconnect exchange can go, counted. Cloning shares the counters.
#[derive(Debug, Clone)]
pub struct CoaMetrics {
    /// Requests sent, by kind (coa, disconnect) and transmission (first, retransmit).
    pub sent: Family<Labels2, Counter>,
    /// Verified replies, by kind and result (ack, nak).
    pub replies: Family<Labels2, Counter>,
    /// NAKs by Error-Cause value (`none` when absent).
    pub nak_causes: Family<[(&'static str, String); 1], Counter>,
    /// Request kinds that got no valid answer within the retransmission limits, by kind.
    pub timeouts: Family<Labels1, Counter>,
    /// Datagrams refused as replies (bad authenticator, wrong code, …), by reason.
    pub bad_replies: Family<Labels1, Counter>,
    /// Whole reevaluations, by outcome (ack, nak, timeout, no_location, unknown_switch, error).
    pub outcomes: Family<Labels1, Counter>,
    /// From the first transmission of a request to its verified reply.
    pub round_trip: Histogram,
    /// Location recorded at Access-Accept: recorded, unchanged, read_only, busy, error.
    pub location_at_auth: Family<Labels1, Counter>,
}

impl CoaMetrics {
    pub(crate) fn register(registry: &mut Registry) -> CoaMetrics {
        let m = CoaMetrics {
            sent: Family::default(),
            replies: Family::default(),
            nak_causes: Family::default(),
            timeouts: Family::default(),
            bad_replies: Family::default(),
            outcomes: Family::default(),
            // 100 µs .. ~6.5 s
            round_trip: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_1, 2.0, 17,
            )),
            location_at_auth: Family::default(),
        };
        registry.register(
            "coa_requests",
            "CoA/Disconnect requests sent, by kind and transmission (first, retransmit)",
            m.sent.clone(),
        );
        registry.register(
            "coa_replies",
            "Verified CoA/Disconnect replies, by kind and result (ack, nak)",
            m.replies.clone(),
        );
        registry.register(
            "coa_nak_error_cause",
            "CoA/Disconnect NAKs by Error-Cause (RFC 5176 §3.5)",
            m.nak_causes.clone(),
        );
        registry.register(
            "coa_timeouts",
            "CoA/Disconnect requests without a valid answer after every retransmission, by kind",
            m.timeouts.clone(),
        );
        registry.register(
            "coa_bad_replies",
            "Datagrams refused as CoA/Disconnect replies, by reason",
            m.bad_replies.clone(),
        );
        registry.register(
            "coa_reevaluations",
            "Access reevaluations (CoA/Disconnect exchanges), by outcome",
            m.outcomes.clone(),
        );
        registry.register(
            "coa_round_trip_seconds",
            "CoA/Disconnect: first transmission to verified reply",
            m.round_trip.clone(),
        );
        registry.register(
            "location_at_auth",
            "Location log written at Access-Accept, by result (recorded, unchanged, read_only, busy, error)",
            m.location_at_auth.clone(),
        );
        m
    }

    pub(crate) fn location(&self, result: &'static str) {
        self.location_at_auth
            .get_or_create(&[("result", result)])
            .inc();
    }
}
