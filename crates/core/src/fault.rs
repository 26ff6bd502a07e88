//! Fault-injection points, in the spirit of PostgreSQL's injection points.
//!
//! When the environment variable `LAVA_V1_FAULT_PAUSE` names a point, the
//! run logs `fault injection: paused at <point>` (on stderr, at warn level)
//! and then sleeps until it is killed.  Tests use it to SIGKILL a drop at
//! a precise step and prove that nothing was changed.  Without the
//! variable every point is a no-op.

/// The environment variable that selects a pause point.
pub const PAUSE_VAR: &str = "LAVA_V1_FAULT_PAUSE";

/// Pauses forever if `point` is the selected injection point.
pub fn point(point: &str) {
    match std::env::var(PAUSE_VAR) {
        Ok(selected) if selected == point => {
            log::warn!("fault injection: paused at {point}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => {}
    }
}
