//! RADIUS MAB load generator used by the benchmark: Message-Authenticator on every request, replies verified.
