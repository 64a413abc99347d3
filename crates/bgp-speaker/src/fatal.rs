//! What a panic does: abort the whole process.
//!
//! Every part of the speaker runs as a tokio task (a peer, the RIB, the kernel FIB, the
//! listeners, the control socket). By default tokio catches a panicking task and the rest
//! carries on: the daemon would stay half alive — a session gone without a NOTIFICATION,
//! the RIB gone while peers keep sending, routes in the kernel that nobody updates — and
//! still answer health checks. Supervising and restarting each task is not safe either:
//! the state it owned (a session's RIB entries, the kernel's view) is lost with it.
//!
//! So bgpd makes any panic fatal: it is logged and the process aborts. The kernel keeps
//! the routes we installed (no `on_exit = "flush"` runs), peers with graceful restart keep
//! our routes as stale, and the supervisor (systemd, kubelet) starts bgpd again, with `-R`
//! the restart adopts the kernel routes and peers refresh them (docs/security.md).
//! Embedders of the library choose their own policy; this is bgpd's.

/// Installs a panic hook that logs the panic and aborts the process (after the default
/// hook printed it). Call it once, before starting the speaker.
pub fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(
            panic = %info,
            "a task panicked: aborting (kernel routes stay; restart with -R to adopt them)"
        );
        default(info);
        std::process::abort();
    }));
}
