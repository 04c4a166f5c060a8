//! Test support: real third-party peers started and cleaned up by tests.
