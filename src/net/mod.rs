//! Outbound networking: the fetch guard every user-supplied URL goes through, and the one backoff function.

mod backoff;
mod guard;
mod tls;

pub use backoff::backoff_delay;
pub use guard::{FetchError, FetchGuard, is_forbidden_ip};
pub use tls::{client_builder, install_tls_provider};
