//! Dynamic Authorization client (RFC 5176): CoA-Request / Disconnect-Request to a NAS, the
//! verification of its ACK/NAK, and a retransmission engine with the per-switch fallback
//! chain (CoA, then Disconnect). No IO, no clock, no randomness: the caller passes `now`,
//! the identifier and the jitter.
//!
//! ```text
//!  server::coa (socket, clock, random)          this module (pure)
//!  ───────────────────────────────────          ──────────────────────────────────────────
//!  Exchange::start(now, jitter) ───────────────► Command::Send { kind, .. }
//!  DynAuthRequest::encode(builder, secret) ────► bytes (Request Authenticator + MA)
//!  socket.send / recv until exchange.deadline()
//!  verify_reply(&request, datagram, secret, …) ► Ok(Reply::Ack | Nak{cause}) | Err (dropped)
//!  Exchange::on_reply / on_timeout ────────────► Send (retransmit / next kind) | Finished
//! ```
//!
//! What PacketFence's `perform_dynauth` does not do and this does: retransmission (RFC 5080
//! §2.2.1), a Message-Authenticator on every request, replies matched on Identifier **and**
//! the Response Authenticator computed over our Request Authenticator, and a fallback that
//! really sends the CoA first (`coaOrDisconnect`).

use std::time::Duration;

use crate::dict::{self, AttrKind};
use crate::{Code, EncodeError, Packet, PacketBuilder, ResponseError, verify_response};

/// Which Dynamic Authorization request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DynAuthKind {
    /// CoA-Request (43): change the session's authorization (re-authenticate, bounce the port).
    Coa,
    /// Disconnect-Request (40): end the session; the device authenticates again.
    Disconnect,
}

impl DynAuthKind {
    /// The request code.
    pub fn request_code(self) -> Code {
        match self {
            DynAuthKind::Coa => Code::CoaRequest,
            DynAuthKind::Disconnect => Code::DisconnectRequest,
        }
    }

    /// `coa` / `disconnect` (metrics labels, logs).
    pub fn label(self) -> &'static str {
        match self {
            DynAuthKind::Coa => "coa",
            DynAuthKind::Disconnect => "disconnect",
        }
    }

    fn of_code(code: Code) -> Option<(DynAuthKind, bool)> {
        match code {
            Code::CoaAck => Some((DynAuthKind::Coa, true)),
            Code::CoaNak => Some((DynAuthKind::Coa, false)),
            Code::DisconnectAck => Some((DynAuthKind::Disconnect, true)),
            Code::DisconnectNak => Some((DynAuthKind::Disconnect, false)),
            _ => None,
        }
    }
}

/// A signed request ready to send, with what its reply is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynAuthRequest {
    /// CoA or Disconnect.
    pub kind: DynAuthKind,
    /// Identifier.
    pub identifier: u8,
    /// The Request Authenticator (the reply's Response Authenticator is computed over it).
    pub authenticator: [u8; 16],
    /// The packet. Retransmissions send these same bytes (same Identifier and Request
    /// Authenticator, RFC 5080 §2.2.1 and RFC 5176 §2.3).
    pub bytes: Vec<u8>,
}

impl DynAuthRequest {
    /// Encodes `attributes` (a builder whose code is ignored) as a `kind` request with
    /// `identifier`: Message-Authenticator first (RFC 5176 §3.1, RFC 3579 §3.2), then the
    /// Request Authenticator `MD5(Code‖ID‖Length‖16×0‖Attributes‖Secret)` (RFC 5176 §2.3).
    pub fn encode(
        kind: DynAuthKind,
        identifier: u8,
        attributes: &PacketBuilder,
        secret: &[u8],
    ) -> DynAuthRequest {
        let mut b = PacketBuilder::new(kind.request_code(), identifier);
        let mut out = Vec::new();
        // Re-use the attribute bytes as they are (already validated by the builder).
        b.extend_raw(attributes.attribute_bytes());
        b.encode_accounting_request_into(secret, true, &mut out);
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&out[4..20]);
        DynAuthRequest {
            kind,
            identifier,
            authenticator,
            bytes: out,
        }
    }
}

/// What the NAS answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// CoA-ACK / Disconnect-ACK.
    Ack,
    /// CoA-NAK / Disconnect-NAK, with its Error-Cause (RFC 5176 §3.5) when present.
    Nak {
        /// Error-Cause value.
        error_cause: Option<ErrorCause>,
    },
}

/// An Error-Cause value (RFC 5176 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCause(pub u32);

impl ErrorCause {
    /// The RFC's name (`Session-Context-Not-Found`), `None` for an unassigned value.
    pub fn name(self) -> Option<&'static str> {
        dict::value_name(dict::ERROR_CAUSE, self.0)
    }
}

impl std::fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Why a datagram is not a valid answer to our request (it is then ignored and counted, and
/// the exchange keeps waiting: RFC 5176 §3.5 / RFC 2865 §3 silently discard).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Malformed, wrong identifier, wrong Response Authenticator or Message-Authenticator.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A valid reply of another kind (a Disconnect-ACK to a CoA-Request), or not a CoA/
    /// Disconnect reply at all.
    #[error("{got} does not answer a {expected:?} request")]
    WrongCode {
        /// What we sent.
        expected: DynAuthKind,
        /// What came back.
        got: Code,
    },
    /// No Message-Authenticator while this switch's replies must carry one.
    #[error("the reply has no Message-Authenticator and this switch requires one")]
    MissingMessageAuthenticator,
}

impl ReplyError {
    /// Short snake_case label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ReplyError::Response(e) => e.reason(),
            ReplyError::WrongCode { .. } => "wrong_code",
            ReplyError::MissingMessageAuthenticator => "missing_message_authenticator",
        }
    }
}

/// Verifies `datagram` as the answer to `request`: identifier, Response Authenticator over
/// our Request Authenticator, Message-Authenticator when present (and required when
/// `require_message_authenticator`), and a code answering the request's kind. Returns the
/// ACK or the NAK with its Error-Cause. Never panics on any input.
pub fn verify_reply(
    request: &DynAuthRequest,
    datagram: &[u8],
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<Reply, ReplyError> {
    let p = verify_response(datagram, request.identifier, &request.authenticator, secret)?;
    let code = p.code();
    let Some((kind, ack)) = DynAuthKind::of_code(code).filter(|(k, _)| *k == request.kind) else {
        return Err(ReplyError::WrongCode {
            expected: request.kind,
            got: code,
        });
    };
    debug_assert_eq!(kind, request.kind);
    if require_message_authenticator && !p.has_message_authenticator() {
        return Err(ReplyError::MissingMessageAuthenticator);
    }
    Ok(if ack {
        Reply::Ack
    } else {
        Reply::Nak {
            error_cause: error_cause(&p),
        }
    })
}

/// The first valid Error-Cause of a packet.
pub fn error_cause(p: &Packet<'_>) -> Option<ErrorCause> {
    p.get_u32(dict::ERROR_CAUSE).map(ErrorCause)
}

/// An attribute given as data (`Cisco-AVPair` = `subscriber:command=reauthenticate`), resolved
/// through the dictionary: what switches.conf's `coaAttributes` / `disconnectAttributes` hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpec {
    target: Target,
    value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Standard(u8),
    Vendor(u32, u8),
}

/// An attribute spec that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeSpecError {
    /// Not in the dictionary.
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    /// The value does not fit the attribute's type.
    #[error("{name}: {value:?} is not a valid {kind}")]
    BadValue {
        /// Attribute name.
        name: String,
        /// Value given.
        value: String,
        /// What was expected.
        kind: &'static str,
    },
    /// Message-Authenticator and secrets are never given as data.
    #[error("{0} cannot be set by configuration")]
    Reserved(String),
}

impl AttributeSpec {
    /// Resolves `name = value`: a standard attribute or a vendor attribute of [`dict`] by its
    /// FreeRADIUS name (case-insensitive); integers by number or by their named value.
    pub fn parse(name: &str, value: &str) -> Result<AttributeSpec, AttributeSpecError> {
        let (target, kind, attr) = if let Some(d) = dict::by_name(name) {
            (Target::Standard(d.typ), d.kind, Some(d.typ))
        } else if let Some(v) = dict::vendor_attr_by_name(name) {
            (Target::Vendor(v.vendor, v.typ), v.kind, None)
        } else {
            return Err(AttributeSpecError::UnknownAttribute(name.to_string()));
        };
        let bad = |kind| AttributeSpecError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
            kind,
        };
        let bytes = match kind {
            AttrKind::Text | AttrKind::Octets | AttrKind::TaggedText => {
                if value.len() > crate::MAX_ATTRIBUTE_VALUE_LEN - 6 {
                    return Err(bad("value of at most 247 octets"));
                }
                value.as_bytes().to_vec()
            }
            AttrKind::Integer | AttrKind::Date => {
                let n = value.parse::<u32>().ok().or_else(|| {
                    attr.and_then(|a| {
                        dict::VALUES
                            .iter()
                            .find(|(t, _, n)| *t == a && n.eq_ignore_ascii_case(value))
                            .map(|(_, v, _)| *v)
                    })
                });
                n.ok_or_else(|| bad("integer"))?.to_be_bytes().to_vec()
            }
            AttrKind::Ipv4 => value
                .parse::<std::net::Ipv4Addr>()
                .map_err(|_| bad("IPv4 address"))?
                .octets()
                .to_vec(),
            AttrKind::Secret | AttrKind::Vsa => {
                return Err(AttributeSpecError::Reserved(name.to_string()));
            }
            _ => return Err(bad("type settable by configuration (text, integer, IPv4)")),
        };
        if attr == Some(dict::MESSAGE_AUTHENTICATOR) {
            return Err(AttributeSpecError::Reserved(name.to_string()));
        }
        Ok(AttributeSpec {
            target,
            value: bytes,
        })
    }

    /// Appends the attribute.
    pub fn add_to(&self, b: &mut PacketBuilder) -> Result<(), EncodeError> {
        match self.target {
            Target::Standard(t) => b.add(t, &self.value).map(drop),
            Target::Vendor(v, t) => b.add_vendor(v, t, &self.value).map(drop),
        }
    }
}

/// Retransmission timing, RFC 5080 §2.2.1 (the DHCPv6 algorithm of RFC 3315 §14): the first
/// timeout is `IRT + RAND·IRT`, each next one `2·RTprev + RAND·RTprev`, capped near `MRT`;
/// at most `MRC` transmissions and `MRD` in total per request kind. `RAND` is uniform in
/// −0.1..+0.1 and given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// IRT: the first timeout.
    pub initial_timeout: Duration,
    /// MRT: the largest timeout.
    pub max_timeout: Duration,
    /// MRC: transmissions of one request (the first one included), at least 1.
    pub max_transmissions: u32,
    /// MRD: time allowed for one request kind, retransmissions included.
    pub max_duration: Duration,
}

impl Default for RetryPolicy {
    /// IRT 2 s, MRT 16 s, MRC 5, MRD 30 s (RFC 5080 §2.2.1's suggested values for a client
    /// whose peer is a NAS: a switch CPU busy re-authenticating a port may be slow).
    fn default() -> Self {
        RetryPolicy {
            initial_timeout: Duration::from_secs(2),
            max_timeout: Duration::from_secs(16),
            max_transmissions: 5,
            max_duration: Duration::from_secs(30),
        }
    }
}

/// Jitter: `RAND` of RFC 5080 §2.2.1 in thousandths, clamped to −100..=100 (−0.1..+0.1). Draw
/// it from a random source per timeout: `Jitter::from_random(u16)` maps a uniform u16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter(i16);

impl Jitter {
    /// No jitter.
    pub const ZERO: Jitter = Jitter(0);

    /// `permille` thousandths, clamped to −100..=100.
    pub fn permille(permille: i16) -> Jitter {
        Jitter(permille.clamp(-100, 100))
    }

    /// A uniform random u16 mapped onto −100..=100.
    pub fn from_random(r: u16) -> Jitter {
        Jitter((i32::from(r) * 201 / 65536 - 100) as i16)
    }

    fn apply(self, base: Duration) -> Duration {
        let ms = base.as_millis() as i64;
        Duration::from_millis((ms + ms * i64::from(self.0) / 1000).max(1) as u64)
    }
}

impl RetryPolicy {
    /// The timeout after transmission `n` (1-based) given the previous one.
    fn timeout(&self, previous: Option<Duration>, j: Jitter) -> Duration {
        let rt = match previous {
            None => j.apply(self.initial_timeout),
            Some(prev) => {
                let doubled = prev.saturating_mul(2);
                let ms = prev.as_millis() as i64 * i64::from(j.0) / 1000;
                let rt = (doubled.as_millis() as i64 + ms).max(1) as u64;
                Duration::from_millis(rt)
            }
        };
        if rt > self.max_timeout {
            j.apply(self.max_timeout)
        } else {
            rt
        }
    }
}

/// What the shell does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Send a request of `kind`: a new one (`retransmission == false`: new identifier and
    /// authenticator) or the same bytes again; then wait for a reply until `until`.
    Send {
        /// Request kind.
        kind: DynAuthKind,
        /// Same packet as the previous transmission.
        retransmission: bool,
        /// Deadline of this transmission; call [`Exchange::on_timeout`] when it passes.
        until: Duration,
    },
    /// The exchange is over; see [`Exchange::outcome`].
    Finished,
}

/// How one request kind of the chain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepResult {
    /// ACK.
    Ack,
    /// NAK with its Error-Cause.
    Nak(Option<ErrorCause>),
    /// No valid answer within MRC / MRD.
    Timeout,
}

/// One request kind tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Kind sent.
    pub kind: DynAuthKind,
    /// Transmissions (1 = no retransmission).
    pub transmissions: u32,
    /// How it ended.
    pub result: StepResult,
}

/// A whole exchange: every kind tried, in order; the last one is the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Steps in the order sent.
    pub steps: Vec<Step>,
}

impl Outcome {
    /// The final step (an exchange always sends at least one request).
    pub fn last(&self) -> Option<&Step> {
        self.steps.last()
    }

    /// Whether the NAS acknowledged the last request.
    pub fn acked(&self) -> bool {
        matches!(self.last().map(|s| s.result), Some(StepResult::Ack))
    }
}

/// The retransmission and fallback engine for one device: sans-IO, time as input.
///
/// `chain` lists the kinds to try (`[Coa, Disconnect]` for `coaOrDisconnect`): an ACK ends
/// the exchange; a NAK or a timeout moves to the next kind; after the last kind the exchange
/// ends with that kind's result. Replies that fail [`verify_reply`] are not given to the
/// engine (they are discarded and the transmission keeps waiting).
#[derive(Debug, Clone)]
pub struct Exchange {
    chain: Vec<DynAuthKind>,
    policy: RetryPolicy,
    step: usize,
    transmissions: u32,
    step_started: Duration,
    last_timeout: Option<Duration>,
    until: Duration,
    steps: Vec<Step>,
    finished: bool,
}

impl Exchange {
    /// An exchange over `chain` (an empty chain sends a Disconnect-Request, the one every NAS
    /// supporting RFC 5176 implements).
    pub fn new(chain: &[DynAuthKind], policy: RetryPolicy) -> Exchange {
        let chain = if chain.is_empty() {
            vec![DynAuthKind::Disconnect]
        } else {
            chain.to_vec()
        };
        Exchange {
            chain,
            policy: RetryPolicy {
                max_transmissions: policy.max_transmissions.max(1),
                ..policy
            },
            step: 0,
            transmissions: 0,
            step_started: Duration::ZERO,
            last_timeout: None,
            until: Duration::ZERO,
            steps: Vec::new(),
            finished: false,
        }
    }

    /// First transmission.
    pub fn start(&mut self, now: Duration, jitter: Jitter) -> Command {
        self.begin_step(now, jitter)
    }

    /// The kind being sent now.
    pub fn current_kind(&self) -> Option<DynAuthKind> {
        (!self.finished).then(|| self.chain[self.step])
    }

    /// When the current transmission times out (`None` once finished).
    pub fn deadline(&self) -> Option<Duration> {
        (!self.finished).then_some(self.until)
    }

    /// A verified reply to the current request.
    pub fn on_reply(&mut self, now: Duration, reply: Reply, jitter: Jitter) -> Command {
        if self.finished {
            return Command::Finished;
        }
        match reply {
            Reply::Ack => self.end_step(StepResult::Ack, now, jitter, false),
            Reply::Nak { error_cause } => {
                self.end_step(StepResult::Nak(error_cause), now, jitter, true)
            }
        }
    }

    /// The current transmission's deadline passed (calling it earlier is ignored).
    pub fn on_timeout(&mut self, now: Duration, jitter: Jitter) -> Command {
        if self.finished {
            return Command::Finished;
        }
        if now < self.until {
            return self.waiting();
        }
        let spent = now.saturating_sub(self.step_started);
        if self.transmissions >= self.policy.max_transmissions || spent >= self.policy.max_duration
        {
            return self.end_step(StepResult::Timeout, now, jitter, true);
        }
        self.transmissions += 1;
        let rt = self.policy.timeout(self.last_timeout, jitter);
        self.last_timeout = Some(rt);
        // MRD bounds the whole step: the last wait ends at step start + MRD.
        self.until = (now + rt).min(self.step_started + self.policy.max_duration);
        Command::Send {
            kind: self.chain[self.step],
            retransmission: true,
            until: self.until,
        }
    }

    /// The result so far (complete once [`Command::Finished`] was returned).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            steps: self.steps.clone(),
        }
    }

    fn waiting(&self) -> Command {
        Command::Send {
            kind: self.chain[self.step],
            retransmission: true,
            until: self.until,
        }
    }

    fn begin_step(&mut self, now: Duration, jitter: Jitter) -> Command {
        self.transmissions = 1;
        self.step_started = now;
        let rt = self.policy.timeout(None, jitter);
        self.last_timeout = Some(rt);
        self.until = (now + rt).min(now + self.policy.max_duration);
        Command::Send {
            kind: self.chain[self.step],
            retransmission: false,
            until: self.until,
        }
    }

    fn end_step(
        &mut self,
        result: StepResult,
        now: Duration,
        jitter: Jitter,
        may_fall_back: bool,
    ) -> Command {
        self.steps.push(Step {
            kind: self.chain[self.step],
            transmissions: self.transmissions,
            result,
        });
        if may_fall_back && self.step + 1 < self.chain.len() {
            self.step += 1;
            return self.begin_step(now, jitter);
        }
        self.finished = true;
        Command::Finished
    }
}

#[cfg(test)]
mod tests;
