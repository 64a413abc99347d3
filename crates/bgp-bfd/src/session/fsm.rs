//! The [`Session`]: one BFD session in asynchronous mode (RFC 5880 6.2, 6.8).
//!
//! Shape (after `quinn-proto`'s `Connection` and `bgp_proto::session::Session`): getters;
//! `handle_*` for a received Control packet and for the clock; commands (`admin_down`,
//! `admin_up`, `set_timers`); and `poll_*` for what the caller must do next. After every
//! `handle_*` or command the caller drains [`Session::poll_transmit`] (packets to send),
//! [`Session::poll_event`] (state changes) and re-arms its timer from
//! [`Session::poll_timeout`]. Time is only ever the `now` passed in.
//!
//! Timers (RFC 5880 6.8.3, 6.8.4, 6.8.7): a session advertises bfd.DesiredMinTxInterval
//! and bfd.RequiredMinRxInterval, but the values *in force* for its own transmit interval
//! and detection time may lag behind while a Poll Sequence (6.5) confirms a change: a
//! slower transmit rate or a faster required receive rate only takes effect once the peer
//! has answered with Final, the opposite changes take effect at once. While not Up the
//! session sends at most once a second. Periodic packets are jittered by up to 25% (10 to
//! 25% with a Detect Mult of 1) from a seeded generator, so runs are reproducible.

use std::collections::VecDeque;
use std::num::{NonZeroU32, NonZeroU8};
use std::time::{Duration, Instant};

use crate::packet::{ControlPacket, Diagnostic, EncodedPacket, State};
use crate::rng::Rng;

use super::config::{interval_us, SessionConfig, MAX_INTERVAL, MIN_INTERVAL, SLOW_TX_INTERVAL};
use super::event::{Discard, Reason, SessionEvent, SessionStats};

/// What we last learnt from the peer's packets (the bfd.Remote* variables of 6.8.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Remote {
    /// bfd.RemoteDiscr; zero until a packet arrives and again once a Detection Time
    /// passes without one.
    discriminator: u32,
    /// bfd.RemoteSessionState.
    state: State,
    diagnostic: Diagnostic,
    /// bfd.RemoteMinRxInterval; RFC 5880 6.8.1 starts it at 1 microsecond.
    min_rx_us: u32,
    /// The peer's Desired Min TX Interval, for the detection time.
    desired_min_tx_us: u32,
    /// The peer's Detect Mult; zero before its first packet.
    detect_mult: u8,
    /// bfd.RemoteDemandMode.
    demand: bool,
    /// The peer's C bit: its BFD does not share fate with its control plane.
    control_plane_independent: bool,
}

impl Remote {
    const INITIAL: Remote = Remote {
        discriminator: 0,
        state: State::Down,
        diagnostic: Diagnostic::NoDiagnostic,
        min_rx_us: 1,
        desired_min_tx_us: 0,
        detect_mult: 0,
        demand: false,
        control_plane_independent: false,
    };
}

/// RFC 5880 6.5: at most one Poll Sequence at a time. `acked_*` are the values the
/// running sequence asks the peer to acknowledge; `again` records a change made while
/// it ran, which needs a sequence of its own once this one ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Poll {
    Idle,
    Running {
        desired_min_tx_us: u32,
        required_min_rx_us: u32,
        again: bool,
    },
}

/// One BFD session. See the module documentation for how to drive it.
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    local_discriminator: NonZeroU32,
    state: State,
    /// bfd.LocalDiag: sent in every packet.
    local_diagnostic: Diagnostic,
    last_down: Option<Reason>,
    remote: Remote,
    /// bfd.DesiredMinTxInterval and bfd.RequiredMinRxInterval, as advertised.
    desired_min_tx_us: u32,
    required_min_rx_us: u32,
    /// The values in force for our transmit interval and the detection time.
    tx_basis_us: u32,
    rx_basis_us: u32,
    poll: Poll,
    /// A packet with Final is owed (6.8.6 step 23).
    send_final: bool,
    /// The transmit timer fired and its packet is not yet taken.
    send_periodic: bool,
    next_tx: Instant,
    detection_deadline: Option<Instant>,
    /// Jitter generator; `None` without jitter.
    jitter: Option<Rng>,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
    /// Timers last reported with `TimersChanged`.
    reported: (Duration, Option<Duration>),
}

fn micros(us: u32) -> Duration {
    Duration::from_micros(u64::from(us))
}

fn slow(us: u32) -> u32 {
    us.max(interval_us(SLOW_TX_INTERVAL))
}

impl Session {
    /// A session in Down that sends its first packet at `now` (unless passive). The
    /// local discriminator must be unique on this system (RFC 5880 6.8.1); the
    /// [`Endpoint`](crate::Endpoint) allocates them. Out-of-range configuration values are
    /// clamped (see [`SessionConfig`]).
    pub fn new(
        mut config: SessionConfig,
        local_discriminator: NonZeroU32,
        now: Instant,
    ) -> Session {
        config.desired_min_tx = config.desired_min_tx.clamp(MIN_INTERVAL, MAX_INTERVAL);
        config.required_min_rx = config.required_min_rx.clamp(MIN_INTERVAL, MAX_INTERVAL);
        config.detect_mult = config.detect_mult.max(1);
        let desired = slow(interval_us(config.desired_min_tx));
        let required = interval_us(config.required_min_rx);
        let jitter = config.jitter_seed.map(Rng::new);
        let mut s = Session {
            config,
            local_discriminator,
            state: State::Down,
            local_diagnostic: Diagnostic::NoDiagnostic,
            last_down: None,
            remote: Remote::INITIAL,
            desired_min_tx_us: desired,
            required_min_rx_us: required,
            tx_basis_us: desired,
            rx_basis_us: required,
            poll: Poll::Idle,
            send_final: false,
            send_periodic: false,
            next_tx: now,
            detection_deadline: None,
            jitter,
            events: VecDeque::new(),
            stats: SessionStats::default(),
            reported: (Duration::ZERO, None),
        };
        s.reported = s.timers();
        s
    }

    // ---- getters ----

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.RemoteSessionState: the state in the peer's last packet.
    pub fn remote_state(&self) -> State {
        self.remote.state
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> NonZeroU32 {
        self.local_discriminator
    }

    /// bfd.RemoteDiscr; zero when unknown.
    pub fn remote_discriminator(&self) -> u32 {
        self.remote.discriminator
    }

    /// bfd.LocalDiag, the diagnostic we send.
    pub fn local_diagnostic(&self) -> Diagnostic {
        self.local_diagnostic
    }

    /// The diagnostic in the peer's last packet.
    pub fn remote_diagnostic(&self) -> Diagnostic {
        self.remote.diagnostic
    }

    /// The C bit of the peer's last packet. RFC 5882 4.3: when it is clear, a session
    /// going Down while the peer restarts its control plane (BGP graceful restart) may be
    /// that restart rather than a forwarding failure; when set, it is a failure.
    pub fn remote_control_plane_independent(&self) -> bool {
        self.remote.control_plane_independent
    }

    /// Why the session last left Up or Init (for `show bfd`), if it ever did.
    pub fn last_down_reason(&self) -> Option<Reason> {
        self.last_down
    }

    /// Our transmit interval in force, before jitter: the larger of our Desired Min TX
    /// and the peer's Required Min RX (RFC 5880 6.8.7).
    pub fn transmit_interval(&self) -> Duration {
        micros(self.tx_basis_us.max(self.remote.min_rx_us))
    }

    /// The Detection Time in asynchronous mode (RFC 5880 6.8.4): the peer's Detect Mult
    /// times the larger of our Required Min RX and its Desired Min TX. `None` before the
    /// first packet.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote.detect_mult > 0).then(|| {
            micros(self.rx_basis_us.max(self.remote.desired_min_tx_us))
                .saturating_mul(u32::from(self.remote.detect_mult))
        })
    }

    /// What we advertise: (Desired Min TX, Required Min RX).
    pub fn advertised_intervals(&self) -> (Duration, Duration) {
        (
            micros(self.desired_min_tx_us),
            micros(self.required_min_rx_us),
        )
    }

    /// What the peer advertised: (Desired Min TX, Required Min RX, Detect Mult); zeros
    /// before its first packet.
    pub fn remote_intervals(&self) -> (Duration, Duration, u8) {
        (
            micros(self.remote.desired_min_tx_us),
            micros(if self.remote.detect_mult == 0 {
                0
            } else {
                self.remote.min_rx_us
            }),
            self.remote.detect_mult,
        )
    }

    /// A Poll Sequence is running (RFC 5880 6.5).
    pub fn poll_in_progress(&self) -> bool {
        self.poll != Poll::Idle
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn timers(&self) -> (Duration, Option<Duration>) {
        (self.transmit_interval(), self.detection_time())
    }

    // ---- commands ----

    /// Administratively disable the session (RFC 5880 6.8.16): AdminDown with diagnostic
    /// 7. Packets keep going out at the slow rate, so the peer learns it was not a
    /// failure (RFC 5882 3.2) rather than timing out.
    pub fn admin_down(&mut self, now: Instant) {
        if self.state != State::AdminDown {
            self.change_state(now, State::AdminDown, Reason::AdminDown);
        }
        self.leave(now);
    }

    /// Leave AdminDown for Down.
    pub fn admin_up(&mut self, now: Instant) {
        if self.state == State::AdminDown {
            self.change_state(now, State::Down, Reason::AdminUp);
        }
        self.leave(now);
    }

    /// Change the intervals and multiplier. While Up a changed interval starts a Poll
    /// Sequence (RFC 5880 6.8.3); the detect multiplier goes out with the next packet.
    pub fn set_timers(
        &mut self,
        now: Instant,
        desired_min_tx: Duration,
        required_min_rx: Duration,
        detect_mult: NonZeroU8,
    ) {
        self.config.desired_min_tx = desired_min_tx.clamp(MIN_INTERVAL, MAX_INTERVAL);
        self.config.required_min_rx = required_min_rx.clamp(MIN_INTERVAL, MAX_INTERVAL);
        self.config.detect_mult = detect_mult.get();
        self.apply_intervals();
        self.leave(now);
    }

    // ---- input ----

    /// A Control packet demultiplexed to this session (RFC 5880 6.8.6 from step 7 on),
    /// with the TTL (IPv6 hop limit) it arrived with. A discarded packet changes nothing
    /// but the discard counter.
    pub fn handle_control(
        &mut self,
        now: Instant,
        packet: &ControlPacket,
        ttl: u8,
    ) -> Result<(), Discard> {
        if let Err(e) = self.check(packet, ttl) {
            self.stats.discarded += 1;
            return Err(e);
        }
        self.stats.received += 1;
        // Steps 11-14.
        self.remote = Remote {
            discriminator: packet.my_discriminator.get(),
            state: packet.state,
            diagnostic: packet.diagnostic,
            min_rx_us: packet.required_min_rx_us,
            desired_min_tx_us: packet.desired_min_tx_us,
            detect_mult: packet.detect_mult.get(),
            demand: packet.demand,
            control_plane_independent: packet.control_plane_independent,
        };
        // Step 16: a Final ends our Poll Sequence.
        if packet.final_bit {
            self.poll_answered();
        }
        // Step 18 (6.8.4): the detection timer restarts, in every state: even in
        // AdminDown a Detection Time without packets must forget the peer (6.8.1).
        self.detection_deadline = self.detection_time().map(|d| now + d);
        // Step 19: AdminDown discards the rest.
        if self.state == State::AdminDown {
            self.leave(now);
            return Ok(());
        }
        // Steps 20-21.
        let next = match (self.state, packet.state) {
            (State::Init | State::Up, State::AdminDown) | (State::Up, State::Down) => {
                Some(State::Down)
            }
            (State::Down, State::Down) => Some(State::Init),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => Some(State::Up),
            _ => None,
        };
        if let Some(to) = next {
            self.change_state(now, to, Reason::PeerState(packet.state));
        }
        // Step 23: answer a Poll at once.
        if packet.poll_bit {
            self.send_final = true;
        }
        self.leave(now);
        Ok(())
    }

    /// Fire what is due at `now`: the detection timer (6.8.4) and the transmit timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.detection_deadline.is_some_and(|d| d <= now) {
            self.detection_deadline = None;
            if matches!(self.state, State::Init | State::Up) {
                self.change_state(now, State::Down, Reason::DetectionTimeExpired);
            }
            // 6.8.1: a Detection Time without a packet forgets the peer's discriminator.
            self.remote.discriminator = 0;
            self.remote.state = State::Down;
            self.remote.demand = false;
        }
        if self.next_tx <= now {
            if self.periodic_allowed() {
                self.send_periodic = true;
            }
            self.next_tx = now + self.jittered_interval();
        }
        self.leave(now);
    }

    // ---- output ----

    /// The next packet to send, if any. The caller sends it to the peer's port for the
    /// session's [`Hops`](super::Hops) with TTL 255.
    pub fn poll_transmit(&mut self) -> Option<EncodedPacket> {
        let (poll_bit, final_bit) = if self.send_final {
            self.send_final = false;
            // A Final carries everything a periodic packet would, except that it must
            // not also carry Poll (6.8.7): with a Poll Sequence running, the periodic
            // packet still goes out on its own.
            if self.poll == Poll::Idle {
                self.send_periodic = false;
            }
            (false, true)
        } else if self.send_periodic {
            self.send_periodic = false;
            (self.poll != Poll::Idle, false)
        } else {
            return None;
        };
        self.stats.sent += 1;
        Some(self.packet(poll_bit, final_bit).encode())
    }

    /// When to call [`Session::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.detection_deadline {
            Some(d) => d.min(self.next_tx),
            None => self.next_tx,
        })
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// A packet was produced and not yet taken with [`Session::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        self.send_final || self.send_periodic
    }

    // ---- internals ----

    /// RFC 5881 5 / RFC 5883 5 (TTL), 6.8.6 steps 7-10.
    fn check(&self, packet: &ControlPacket, ttl: u8) -> Result<(), Discard> {
        let min = self.config.hops.min_ttl();
        if ttl < min {
            return Err(Discard::Ttl { ttl, min });
        }
        let ours = self.local_discriminator.get();
        match packet.your_discriminator {
            0 if !matches!(packet.state, State::Down | State::AdminDown) => {
                return Err(Discard::ZeroDiscriminatorInState(packet.state));
            }
            0 => {}
            got if got != ours => return Err(Discard::WrongDiscriminator { got, ours }),
            _ => {}
        }
        match (&packet.authentication, &self.config.authentication) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(Discard::AuthenticationUnexpected),
            (None, Some(_)) => Err(Discard::AuthenticationMissing),
            (Some(got), Some(want)) if got.key_id != want.key_id => {
                Err(Discard::AuthenticationKeyId(got.key_id))
            }
            (Some(got), Some(want)) if !want.password.matches(&got.password) => {
                Err(Discard::AuthenticationFailed)
            }
            (Some(_), Some(_)) => Ok(()),
        }
    }

    /// RFC 5880 6.8.7: when periodic packets may go out.
    fn periodic_allowed(&self) -> bool {
        if self.config.passive && self.remote.discriminator == 0 {
            return false;
        }
        if self.remote.min_rx_us == 0 {
            return false;
        }
        let remote_demand_active =
            self.remote.demand && self.state == State::Up && self.remote.state == State::Up;
        !remote_demand_active || self.poll != Poll::Idle
    }

    fn packet(&self, poll_bit: bool, final_bit: bool) -> ControlPacket {
        ControlPacket {
            diagnostic: self.local_diagnostic,
            state: self.state,
            poll_bit,
            final_bit,
            control_plane_independent: false,
            demand: false,
            authentication: self.config.authentication,
            detect_mult: NonZeroU8::new(self.config.detect_mult).unwrap_or(NonZeroU8::MIN),
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote.discriminator,
            desired_min_tx_us: self.desired_min_tx_us,
            required_min_rx_us: self.required_min_rx_us,
            required_min_echo_rx_us: 0,
        }
    }

    fn change_state(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.local_diagnostic = reason.diagnostic(to);
        if matches!(to, State::Down | State::AdminDown) && from != State::AdminDown {
            self.last_down = Some(reason);
        }
        if to == State::Up {
            self.stats.up_count += 1;
        }
        self.apply_intervals();
        let event = SessionEvent::StateChanged { from, to, reason };
        if event.is_failure() {
            self.stats.failures += 1;
        }
        self.events.push_back(event);
        self.reschedule(now);
    }

    /// Recomputes the advertised intervals from the configuration and state, and the
    /// values in force (RFC 5880 6.8.3).
    fn apply_intervals(&mut self) {
        let configured = interval_us(self.config.desired_min_tx);
        let desired = if self.state == State::Up {
            configured
        } else {
            slow(configured)
        };
        let required = interval_us(self.config.required_min_rx);
        let changed = desired != self.desired_min_tx_us || required != self.required_min_rx_us;
        self.desired_min_tx_us = desired;
        self.required_min_rx_us = required;
        if self.state != State::Up {
            self.poll = Poll::Idle;
            self.tx_basis_us = desired;
            self.rx_basis_us = required;
            return;
        }
        // Faster sending and slower receiving are safe at once.
        self.tx_basis_us = self.tx_basis_us.min(desired);
        self.rx_basis_us = self.rx_basis_us.max(required);
        if changed {
            self.poll = match self.poll {
                Poll::Idle => Poll::Running {
                    desired_min_tx_us: desired,
                    required_min_rx_us: required,
                    again: false,
                },
                Poll::Running {
                    desired_min_tx_us,
                    required_min_rx_us,
                    ..
                } => Poll::Running {
                    desired_min_tx_us,
                    required_min_rx_us,
                    again: true,
                },
            };
        }
    }

    /// A Final arrived: the values our Poll Sequence carried are acknowledged.
    fn poll_answered(&mut self) {
        let Poll::Running {
            desired_min_tx_us,
            required_min_rx_us,
            again,
        } = self.poll
        else {
            return;
        };
        self.tx_basis_us = desired_min_tx_us.min(self.desired_min_tx_us);
        self.rx_basis_us = required_min_rx_us.max(self.required_min_rx_us);
        self.poll = if again {
            Poll::Running {
                desired_min_tx_us: self.desired_min_tx_us,
                required_min_rx_us: self.required_min_rx_us,
                again: false,
            }
        } else {
            Poll::Idle
        };
    }

    /// After any input: bring the transmit timer forward if the interval shrank, and
    /// report changed timers.
    fn leave(&mut self, now: Instant) {
        self.reschedule(now);
        let timers = self.timers();
        if timers != self.reported {
            self.reported = timers;
            self.events.push_back(SessionEvent::TimersChanged {
                transmit_interval: timers.0,
                detection_time: timers.1,
            });
        }
    }

    fn reschedule(&mut self, now: Instant) {
        let interval = self.transmit_interval();
        if self.next_tx > now + interval {
            self.next_tx = now + self.jittered_interval();
        }
    }

    /// RFC 5880 6.8.7: the interval less 0-25% (10-25% with Detect Mult 1, so a packet
    /// never arrives just as the peer's detection time runs out). Without jitter the
    /// least reduction allowed: none, or 10% with Detect Mult 1.
    fn jittered_interval(&mut self) -> Duration {
        let interval = self.transmit_interval();
        let span = if self.config.detect_mult == 1 {
            150
        } else {
            250
        };
        let reduction = match self.jitter.as_mut() {
            Some(rng) => 250 - rng.next_u32() % (span + 1),
            None => 250 - span,
        };
        interval * (1000 - reduction) / 1000
    }
}
