//! The coordinator: starts every client on the current tokio runtime, records when the
//! last one reached Established and when the last one held every other client's routes,
//! then stops them all and sums up what they counted in a [`Report`].
//!
//! A client whose session goes down, or a run past its timeout, ends the run with a
//! [`RunError`] that carries the partial counts, so a failed benchmark says how far it got.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::client::{run_client, ClientError, ClientSettings, ClientSummary, Progress};
use crate::usage::{process_cpu, process_usage};

/// How long stopped clients get to send their Cease and close.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What one run measured. Times are seconds from the start of the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub clients: u32,
    pub routes_per_client: u32,
    /// Routes each client must receive: every other client's.
    pub expected_per_client: u64,
    /// The last client reached Established.
    pub established_s: f64,
    /// The last client held every other client's routes.
    pub complete_s: f64,
    /// This process's CPU time (user + system) at completion.
    pub loadgen_cpu_s: Option<f64>,
    /// The device under test's CPU time from the start of the run to completion, when
    /// its PID was given.
    pub dut_cpu_s: Option<f64>,
    /// The device under test's peak resident set (VmHWM) at completion, MiB.
    pub dut_peak_rss_mib: Option<f64>,
    pub counts: Counts,
}

/// Totals over all clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Clients that reached Established.
    pub established: u32,
    /// Clients holding every other client's routes.
    pub complete: u32,
    /// Fewest other clients' routes any client held.
    pub min_held: u64,
    /// Announcements received (replacements included).
    pub announced: u64,
    pub withdrawn: u64,
    /// Clients' own prefixes sent back to them.
    pub own: u64,
    /// Prefixes outside the plan.
    pub foreign: u64,
}

impl Counts {
    fn add(&mut self, summaries: &[ClientSummary]) {
        self.min_held = summaries
            .iter()
            .map(|s| s.tally.held_others())
            .min()
            .unwrap_or(0);
        for s in summaries {
            self.announced += s.tally.announced;
            self.withdrawn += s.tally.withdrawn;
            self.own += s.tally.own;
            self.foreign += s.tally.foreign;
        }
    }
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error(
        "timed out after {timeout:?}: {} of {clients} established, {} complete, fewest routes \
         held {}, {} announcements received in all",
        counts.established,
        counts.complete,
        counts.min_held,
        counts.announced
    )]
    Timeout {
        timeout: Duration,
        clients: u32,
        counts: Counts,
    },
    #[error("a client task failed: {0}")]
    Task(String),
}

/// Runs every client of `settings.plan` against the device under test; fails after
/// `timeout`. With `dut_pid`, the report carries that process's CPU time over the run
/// and its peak RSS.
pub async fn run(
    settings: ClientSettings,
    timeout: Duration,
    dut_pid: Option<u32>,
) -> Result<Report, RunError> {
    let clients = settings.plan.clients();
    let dut_before = dut_pid.and_then(process_usage);
    let (progress_tx, mut progress) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();
    let deadline = tokio::time::Instant::from_std(start + timeout);
    let mut tasks = JoinSet::new();
    for client in 0..clients {
        tasks.spawn(run_client(
            settings.clone(),
            client,
            progress_tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop(progress_tx);

    let mut counts = Counts::default();
    let mut established_at = None;
    let mut complete_at = None;
    let mut failure = None;
    while complete_at.is_none() && failure.is_none() {
        tokio::select! {
            event = progress.recv() => match event {
                Some(Progress::Established { at, .. }) => {
                    counts.established += 1;
                    if counts.established == clients {
                        established_at = Some(at);
                    }
                }
                Some(Progress::Complete { at, .. }) => {
                    counts.complete += 1;
                    if counts.complete == clients {
                        complete_at = Some(at);
                    }
                }
                None => break,
            },
            joined = tasks.join_next(), if !tasks.is_empty() => match joined {
                // A client ended before the stop: its session failed.
                Some(Ok(Err(e))) => failure = Some(RunError::Client(e)),
                Some(Err(e)) => failure = Some(RunError::Task(e.to_string())),
                Some(Ok(Ok(_))) | None => {}
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    let cpu = process_cpu();
    let dut_after = dut_pid.and_then(process_usage);
    let _ = stop_tx.send(true);
    let summaries = collect(&mut tasks).await;
    counts.add(&summaries);
    if let Some(e) = failure {
        return Err(e);
    }
    match (established_at, complete_at) {
        (Some(est), Some(done)) => Ok(Report {
            clients,
            routes_per_client: settings.plan.routes(),
            expected_per_client: settings.plan.expected_per_client(),
            established_s: est.duration_since(start).as_secs_f64(),
            complete_s: done.duration_since(start).as_secs_f64(),
            loadgen_cpu_s: cpu.map(|d| d.as_secs_f64()),
            dut_cpu_s: dut_before
                .zip(dut_after)
                .map(|(b, a)| a.cpu.saturating_sub(b.cpu).as_secs_f64()),
            dut_peak_rss_mib: dut_after.map(|a| a.peak_rss_kib as f64 / 1024.0),
            counts,
        }),
        _ => Err(RunError::Timeout {
            timeout,
            clients,
            counts,
        }),
    }
}

/// Waits (a bounded time) for the stopped clients and keeps what they counted.
async fn collect(tasks: &mut JoinSet<Result<ClientSummary, ClientError>>) -> Vec<ClientSummary> {
    let mut summaries = Vec::new();
    let grace = tokio::time::sleep(STOP_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(Ok(summary))) => summaries.push(summary),
                Some(_) => {}
                None => break,
            },
            () = &mut grace => {
                tasks.abort_all();
                break;
            }
        }
    }
    summaries
}
