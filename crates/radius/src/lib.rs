//! Sans-IO RADIUS codec: packets, attributes, authenticators, Message-Authenticator, password hiding, reply cache.
