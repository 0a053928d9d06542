//! Outbound networking: the fetch guard every user-supplied URL goes through, and the one backoff function.

mod backoff;
mod guard;
#[cfg(test)]
pub(crate) mod test_server;
mod tls;

pub use backoff::backoff_delay;
pub use guard::{FetchError, FetchGuard, is_forbidden_ip};
pub use tls::{client_builder, install_tls_provider};

/// Idle connections a client keeps per host for reuse. Each keeps the read buffer it grew to for a clip
/// (hundreds of KiB), so keeping all of a burst's connections (64 polls or downloads at once) cost tens of MB.
pub const IDLE_PER_HOST: usize = 4;
