//! BGP4MP_ET update logs (RFC 6396 4.4 with the extended timestamp of section 3, RFC 8050
//! section 3): every BGP message a session received or sent, and its state changes.
//!
//! Subtypes: a message on a session that negotiated 4-octet AS numbers (RFC 6793) is
//! MESSAGE_AS4, else MESSAGE: readers (bgpdump, this crate) decode the AS_PATH inside
//! with the AS size the subtype names, so the subtype must follow the session. Messages
//! whose NLRI carry ADD-PATH path identifiers (RFC 7911) use the `*_ADDPATH` subtypes of
//! RFC 8050, and messages the local side sent the `*_LOCAL` ones. State changes are
//! always STATE_CHANGE_AS4.

use std::io::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bgp_proto::session::State;
use bgp_proto::AS_TRANS;

use super::{put_ip, put_record, WriteError};
use crate::record::{bgp4mp_subtype as subtype, mrt_type};

/// A record time: seconds and microseconds since the Unix epoch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MrtTime {
    pub seconds: u32,
    pub microseconds: u32,
}

impl MrtTime {
    /// `t` as an MRT time; `Err` before 1970 or after 2106 (the 32-bit seconds field).
    pub fn from_system_time(t: SystemTime) -> Result<MrtTime, WriteError> {
        let d = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| WriteError::Invalid("time before the Unix epoch".into()))?;
        let seconds = u32::try_from(d.as_secs())
            .map_err(|_| WriteError::Invalid("time beyond the 32-bit MRT timestamp".into()))?;
        Ok(MrtTime {
            seconds,
            microseconds: d.subsec_micros(),
        })
    }
}

/// Which side sent the logged message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from the peer (MESSAGE, MESSAGE_AS4, ...).
    Received,
    /// Sent by the local side (the `*_LOCAL` subtypes).
    Sent,
}

/// The session a BGP4MP record belongs to (RFC 6396 4.4.1-4.4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bgp4mpSession {
    pub peer_as: u32,
    pub local_as: u32,
    pub interface_index: u16,
    /// Peer and local address: both IPv4 or both IPv6 (the record has one AFI).
    pub peer_ip: IpAddr,
    pub local_ip: IpAddr,
    /// The session negotiated 4-octet AS numbers: messages are logged as MESSAGE_AS4.
    pub four_octet_as: bool,
}

/// BGP FSM states as BGP4MP STATE_CHANGE records number them (RFC 6396 4.4.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BgpState {
    Idle = 1,
    Connect = 2,
    Active = 3,
    OpenSent = 4,
    OpenConfirm = 5,
    Established = 6,
}

impl From<State> for BgpState {
    fn from(s: State) -> BgpState {
        match s {
            State::Idle => BgpState::Idle,
            State::Connect => BgpState::Connect,
            State::Active => BgpState::Active,
            State::OpenSent => BgpState::OpenSent,
            State::OpenConfirm => BgpState::OpenConfirm,
            State::Established => BgpState::Established,
        }
    }
}

/// Writes BGP4MP_ET records to `out` as they come, one `write` per record (wrap `out` in
/// a `BufWriter`, as [`super::MrtFile`] does, for many small records).
#[derive(Debug)]
pub struct UpdateLogWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    body: Vec<u8>,
    records: u64,
}

impl<W: Write> UpdateLogWriter<W> {
    pub fn new(out: W) -> Self {
        UpdateLogWriter {
            out,
            buf: Vec::with_capacity(4096),
            body: Vec::with_capacity(4096),
            records: 0,
        }
    }

    /// Log one whole BGP message (marker included) of `session`. `add_path`: its NLRI
    /// carry ADD-PATH path identifiers (RFC 8050 section 3 subtypes).
    pub fn write_message(
        &mut self,
        time: MrtTime,
        session: &Bgp4mpSession,
        direction: Direction,
        add_path: bool,
        message: &[u8],
    ) -> Result<(), WriteError> {
        if message.len() < bgp_proto::HEADER_LEN {
            return Err(WriteError::Invalid(format!(
                "a BGP message of {} octets is shorter than its header",
                message.len()
            )));
        }
        let local = direction == Direction::Sent;
        let subtype = match (session.four_octet_as, local, add_path) {
            (false, false, false) => subtype::MESSAGE,
            (true, false, false) => subtype::MESSAGE_AS4,
            (false, true, false) => subtype::MESSAGE_LOCAL,
            (true, true, false) => subtype::MESSAGE_AS4_LOCAL,
            (false, false, true) => subtype::MESSAGE_ADDPATH,
            (true, false, true) => subtype::MESSAGE_AS4_ADDPATH,
            (false, true, true) => subtype::MESSAGE_LOCAL_ADDPATH,
            (true, true, true) => subtype::MESSAGE_AS4_LOCAL_ADDPATH,
        };
        self.body.clear();
        put_peers(&mut self.body, session, session.four_octet_as)?;
        self.body.extend_from_slice(message);
        self.emit(time, subtype)
    }

    /// Log a state change of `session` (STATE_CHANGE_AS4, RFC 6396 4.4.4).
    pub fn write_state_change(
        &mut self,
        time: MrtTime,
        session: &Bgp4mpSession,
        old: BgpState,
        new: BgpState,
    ) -> Result<(), WriteError> {
        self.body.clear();
        put_peers(&mut self.body, session, true)?;
        self.body.extend_from_slice(&(old as u16).to_be_bytes());
        self.body.extend_from_slice(&(new as u16).to_be_bytes());
        self.emit(time, subtype::STATE_CHANGE_AS4)
    }

    fn emit(&mut self, time: MrtTime, subtype: u16) -> Result<(), WriteError> {
        self.buf.clear();
        put_record(
            &mut self.buf,
            time.seconds,
            mrt_type::BGP4MP_ET,
            subtype,
            Some(time.microseconds),
            &self.body,
        )?;
        self.out.write_all(&self.buf)?;
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Flush the output (a log being tailed).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        Ok(self.out.flush()?)
    }

    /// Flush and hand the output back.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Peer AS, local AS, interface index, AFI, peer and local address (RFC 6396 4.4.1).
/// 2-octet fields take AS_TRANS for a 4-octet AS (RFC 6793).
fn put_peers(out: &mut Vec<u8>, s: &Bgp4mpSession, four_octet_as: bool) -> Result<(), WriteError> {
    let afi: u16 = match (s.peer_ip, s.local_ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) => 1,
        (IpAddr::V6(_), IpAddr::V6(_)) => 2,
        _ => {
            return Err(WriteError::Invalid(format!(
                "peer {} and local {} addresses of different families",
                s.peer_ip, s.local_ip
            )))
        }
    };
    for asn in [s.peer_as, s.local_as] {
        if four_octet_as {
            out.extend_from_slice(&asn.to_be_bytes());
        } else {
            let two = u16::try_from(asn).unwrap_or(AS_TRANS);
            out.extend_from_slice(&two.to_be_bytes());
        }
    }
    out.extend_from_slice(&s.interface_index.to_be_bytes());
    out.extend_from_slice(&afi.to_be_bytes());
    put_ip(out, s.peer_ip);
    put_ip(out, s.local_ip);
    Ok(())
}
