//! The bounded output queue: whole encoded messages waiting to be written.
//!
//! Messages are encoded straight into one buffer, their lengths kept beside it, and
//! handed out whole, several at a time ([`Queue::pop_chunk`]): the stream stays framed
//! whatever is dropped later, since a message is either entirely with the caller or
//! entirely here.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::wire::{encode_message, BmpMessage, EncodeError};

/// Messages handed out at once, up to this many bytes (a single larger message goes
/// alone).
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    buf: BytesMut,
    lengths: VecDeque<usize>,
}

/// Why a message was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The message would take the queue over its limit.
    Full,
    Encode(EncodeError),
}

impl Queue {
    pub(crate) fn len_bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Queue `msg` if the queue stays within `limit` bytes.
    pub(crate) fn push(&mut self, msg: &BmpMessage, limit: usize) -> Result<(), PushError> {
        let before = self.buf.len();
        encode_message(msg, &mut self.buf).map_err(PushError::Encode)?;
        if self.buf.len() > limit {
            self.buf.truncate(before);
            return Err(PushError::Full);
        }
        self.lengths.push_back(self.buf.len() - before);
        Ok(())
    }

    /// Queue `msg` whatever the limit (the client's own few small messages).
    pub(crate) fn push_unbounded(&mut self, msg: &BmpMessage) -> Result<(), EncodeError> {
        let before = self.buf.len();
        encode_message(msg, &mut self.buf)?;
        self.lengths.push_back(self.buf.len() - before);
        Ok(())
    }

    /// The next whole messages, up to [`CHUNK`] bytes (at least one message).
    pub(crate) fn pop_chunk(&mut self) -> Option<Bytes> {
        let mut take = 0;
        while let Some(&len) = self.lengths.front() {
            if take > 0 && take + len > CHUNK {
                break;
            }
            take += len;
            self.lengths.pop_front();
        }
        (take > 0).then(|| self.buf.split_to(take).freeze())
    }

    /// Drop everything not yet handed out; returns how many messages that was.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.lengths.len();
        self.buf.clear();
        self.lengths.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_message, frame_len, Initiation, Tlv};

    fn msg(text_len: usize) -> BmpMessage {
        BmpMessage::Initiation(Initiation {
            information: vec![Tlv::new(0, vec![b'x'; text_len])],
        })
    }

    #[test]
    fn chunks_hold_whole_messages() {
        let mut q = Queue::default();
        for _ in 0..3 {
            q.push(&msg(30_000), 1 << 20).unwrap();
        }
        let big = BmpMessage::Initiation(Initiation {
            information: vec![
                Tlv::new(0, vec![0u8; 50_000]),
                Tlv::new(0, vec![0u8; 50_000]),
            ],
        });
        q.push(&big, 1 << 20).unwrap();
        q.push_unbounded(&msg(1)).unwrap();
        let mut chunks = Vec::new();
        while let Some(c) = q.pop_chunk() {
            chunks.push(c);
        }
        // 2 x 30 010 fit 64 KiB, the third starts a chunk; the big one goes alone.
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [60_020, 30_010, 100_014, 11]);
        for c in chunks {
            let mut rest = c;
            while !rest.is_empty() {
                let n = frame_len(&rest, usize::MAX).unwrap().unwrap();
                decode_message(rest.split_to(n)).unwrap();
            }
        }
        assert!(q.is_empty());
    }

    #[test]
    fn a_message_over_the_limit_is_not_queued_and_clear_drops_the_rest() {
        let mut q = Queue::default();
        q.push(&msg(100), 300).unwrap();
        assert!(matches!(q.push(&msg(200), 300), Err(PushError::Full)));
        assert_eq!(q.len_bytes(), 110);
        assert_eq!(q.clear(), 1);
        assert!(q.pop_chunk().is_none());
        let bad = BmpMessage::Initiation(Initiation {
            information: vec![Tlv::new(0, vec![0u8; 70_000])],
        });
        assert!(matches!(q.push(&bad, 1 << 20), Err(PushError::Encode(_))));
        assert!(q.is_empty());
    }
}
