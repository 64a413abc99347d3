//! The health of the speaker's components that can fail on their own while the daemon runs:
//! the kernel FIB writer, the kernel route import and the next-hop watcher. Each heals
//! itself (recovery.rs of the installer, the watchers' reconnection), and meanwhile says so
//! here; `bgpctl show status` lists them and the BIRD-compatible socket answers "not
//! ready" while one is down (control/bird.rs), so a node whose FIB is not following the
//! RIB is not reported as healthy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// The kernel FIB writer (routes into the kernel).
pub const KERNEL_FIB: &str = "kernel-fib";
/// The kernel route import (routes Felix programs, into the RIB).
pub const KERNEL_IMPORT: &str = "kernel-import";
/// The next-hop watcher (the kernel's view for next-hop resolution).
pub const NEXT_HOPS: &str = "next-hop-watcher";

/// One component's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentState {
    /// Name (one of the constants above).
    pub name: &'static str,
    /// Down, and why; `None` while up.
    pub down: Option<String>,
    /// Since when it is in this state.
    pub since: Instant,
}

impl ComponentState {
    /// Time in this state.
    pub fn for_how_long(&self) -> Duration {
        self.since.elapsed()
    }
}

/// The registry, shared by the components and the status queries.
#[derive(Clone, Debug, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<&'static str, ComponentState>>>,
}

impl Health {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<&'static str, ComponentState>) -> T) -> T {
        let mut m = self.components.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut m)
    }

    /// `name` works (registers it when new).
    pub fn up(&self, name: &'static str) {
        self.with(|m| {
            let was_down = m.get(name).and_then(|c| c.down.clone());
            if was_down.is_some() || !m.contains_key(name) {
                if let Some(reason) = was_down {
                    info!(component = name, was = %reason, "component recovered");
                }
                m.insert(
                    name,
                    ComponentState {
                        name,
                        down: None,
                        since: Instant::now(),
                    },
                );
            }
        });
    }

    /// `name` is down for `reason` (the first reason of an outage is kept).
    pub fn down(&self, name: &'static str, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|m| {
            if m.get(name).is_some_and(|c| c.down.is_some()) {
                return;
            }
            warn!(component = name, %reason, "component down");
            m.insert(
                name,
                ComponentState {
                    name,
                    down: Some(reason),
                    since: Instant::now(),
                },
            );
        });
    }

    /// Every registered component, by name.
    pub fn components(&self) -> Vec<ComponentState> {
        self.with(|m| m.values().cloned().collect())
    }

    /// The components that are down.
    #[cfg(test)]
    pub fn down_components(&self) -> Vec<ComponentState> {
        self.with(|m| m.values().filter(|c| c.down.is_some()).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_reported_until_recovery_keeping_the_first_reason() {
        let h = Health::default();
        h.up(KERNEL_FIB);
        h.up(KERNEL_IMPORT);
        assert!(h.down_components().is_empty());
        h.down(KERNEL_FIB, "netlink: broken pipe");
        h.down(KERNEL_FIB, "later error");
        let down = h.down_components();
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].name, KERNEL_FIB);
        assert_eq!(down[0].down.as_deref(), Some("netlink: broken pipe"));
        h.up(KERNEL_FIB);
        assert!(h.down_components().is_empty());
        assert_eq!(h.components().len(), 2);
    }
}
