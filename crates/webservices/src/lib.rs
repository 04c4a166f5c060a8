//! Node-to-node API.
