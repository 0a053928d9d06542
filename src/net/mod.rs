//! Outbound networking: the fetch guard every user-supplied URL goes through, and the one backoff function.

mod backoff;
mod guard;

pub use backoff::backoff_delay;
pub use guard::{FetchError, FetchGuard, is_forbidden_ip};
