//! PacketFence-style INI configuration: a comment-preserving document model, typed pf.conf / switches.conf / roles.conf, validation with file:line.
