//! Pure authorization decisions: node + switch + config -> VLAN / reply attributes.
