//! Outbound networking (being written).
