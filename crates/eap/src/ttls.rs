//! (issue 12: to be written)
