//! Named crash points, for crash testing only (`DEVATAR_FAILPOINT=NAME` or `NAME:N`): the Nth time (default the
//! first) this process passes the point NAME it kills itself with SIGKILL — no destructor, no flush, no rollback, as
//! a power cut or `kill -9` would. `bench/crashpoints.sh` runs a cloud render on the sandbox with each point in turn,
//! restarts it and checks that no paid job was submitted twice, no object was damaged and no step was left running.
//!
//! The points sit where a crash is most expensive: between recording a paid submit and sending it, between a
//! provider accepting it and its id being recorded, while polling, downloading or uploading media, while assembling,
//! and while renewing a run's lease. A process without the setting never pays more than one atomic load per pass.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A paid job's `Submitting` record is stored; the submit is not sent yet.
pub const AFTER_RECORD_BEFORE_SUBMIT: &str = "after-record-before-submit";
/// The provider accepted the submit; its job id is not recorded yet.
pub const AFTER_SUBMIT_BEFORE_RECORD: &str = "after-submit-before-record";
/// A submitted job is being polled.
pub const MID_POLL: &str = "mid-poll";
/// A provider's output is being downloaded (part of it is on disk).
pub const MID_DOWNLOAD: &str = "mid-download";
/// A work file is being stored (part of it is uploaded).
pub const MID_UPLOAD: &str = "mid-upload";
/// ASSEMBLE has joined the scenes and not stored the project video yet.
pub const MID_ASSEMBLE: &str = "mid-assemble";
/// A run's lease is being renewed.
pub const MID_LEASE_RENEWAL: &str = "mid-lease-renewal";

/// Every crash point, in the order a render meets them.
pub const POINTS: &[&str] = &[
    AFTER_RECORD_BEFORE_SUBMIT,
    AFTER_SUBMIT_BEFORE_RECORD,
    MID_POLL,
    MID_DOWNLOAD,
    MID_UPLOAD,
    MID_ASSEMBLE,
    MID_LEASE_RENEWAL,
];

/// An armed crash point: its name and on which pass it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failpoint {
    /// One of [`POINTS`].
    pub name: &'static str,
    /// Fire on this pass (1 = the first).
    pub nth: u32,
}

impl Failpoint {
    /// Parses `NAME` or `NAME:N` (N ≥ 1); the error lists the known points.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (name, nth) = match spec.trim().split_once(':') {
            Some((n, k)) => (n, k.parse::<u32>().ok().filter(|k| *k >= 1)),
            None => (spec.trim(), Some(1)),
        };
        let nth = nth
            .ok_or_else(|| format!("`{spec}`: the pass after `:` must be a whole number from 1"))?;
        let name = POINTS.iter().find(|p| **p == name).ok_or_else(|| {
            format!(
                "`{name}` is not a crash point (one of {})",
                POINTS.join(", ")
            )
        })?;
        Ok(Self { name, nth })
    }
}

static ARMED: OnceLock<(Failpoint, AtomicU32)> = OnceLock::new();

/// Arms `point` for the rest of this process (the first call wins; later ones are ignored).
pub fn arm(point: Failpoint) {
    let _ = ARMED.set((point, AtomicU32::new(0)));
}

/// Marks a pass through crash point `name`: kills the process when it is the armed point's Nth pass.
pub fn hit(name: &'static str) {
    let Some((point, passes)) = ARMED.get() else {
        return;
    };
    if point.name != name || passes.fetch_add(1, Ordering::SeqCst) + 1 != point.nth {
        return;
    }
    eprintln!(
        "DEVATAR_FAILPOINT={name}:{}: killing this process (SIGKILL)",
        point.nth
    );
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_known_point_and_a_pass() {
        assert_eq!(
            Failpoint::parse("mid-poll"),
            Ok(Failpoint {
                name: MID_POLL,
                nth: 1
            })
        );
        assert_eq!(
            Failpoint::parse(" mid-upload:3 "),
            Ok(Failpoint {
                name: MID_UPLOAD,
                nth: 3
            })
        );
        for bad in ["mid-pol", "mid-poll:0", "mid-poll:x", "", "mid-poll:"] {
            let e = Failpoint::parse(bad).unwrap_err();
            assert!(e.contains('`'), "{bad}: {e}");
        }
        assert!(
            Failpoint::parse("nope")
                .unwrap_err()
                .contains(AFTER_RECORD_BEFORE_SUBMIT)
        );
    }

    #[test]
    fn an_unarmed_process_passes_every_point() {
        for p in POINTS {
            hit(p);
        }
    }
}
