//! Update generation: turn a peer's queued changes into UPDATE messages.
//!
//! Withdrawals are batched per family; announcements are grouped by outgoing attribute set
//! (interned, so grouping is by pointer) in first-seen order and each group is packed into
//! as few UPDATEs as the negotiated message size allows by the codec's packer
//! (RFC 4271 4.3, RFC 4760, RFC 7911 path ids); End-of-RIB markers (RFC 4724 2) come last.

use std::sync::Arc;

use bgp_proto::wire::{encode_announcements, encode_end_of_rib, encode_withdrawals, EncodeError};
use bgp_proto::{CodecContext, Family, Nlri};
use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::attrs::Attrs;
use crate::rib::PeerOutput;

/// Encode `output` with the session's codec parameters, appending frames to `out`.
pub fn encode(
    output: &PeerOutput,
    ctx: &CodecContext,
    out: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    let mut withdraw: Vec<(Family, Vec<Nlri>)> = Vec::new();
    let mut groups: Vec<(Family, Attrs, Vec<Nlri>)> = Vec::new();
    let mut index: FxHashMap<(Family, usize), usize> = FxHashMap::default();
    for c in &output.changes {
        match &c.attrs {
            None => match withdraw.iter_mut().find(|(f, _)| *f == c.family) {
                Some((_, v)) => v.push(c.nlri),
                None => withdraw.push((c.family, vec![c.nlri])),
            },
            Some(a) => {
                // Runs of changes sharing a set are the common case: try the last group first.
                if let Some(g) = groups.last_mut() {
                    if g.0 == c.family && Arc::ptr_eq(&g.1, a) {
                        g.2.push(c.nlri);
                        continue;
                    }
                }
                let key = (c.family, Arc::as_ptr(a) as usize);
                match index.get(&key) {
                    Some(&i) => {
                        if let Some(g) = groups.get_mut(i) {
                            g.2.push(c.nlri);
                        }
                    }
                    None => {
                        index.insert(key, groups.len());
                        groups.push((c.family, a.clone(), vec![c.nlri]));
                    }
                }
            }
        }
    }
    for (family, nlri) in &withdraw {
        encode_withdrawals(*family, nlri, ctx, out)?;
    }
    for (family, attrs, nlri) in &groups {
        encode_announcements(
            *family,
            &attrs.attrs,
            attrs.next_hop.as_ref(),
            nlri,
            ctx,
            out,
        )?;
    }
    for family in &output.end_of_rib {
        encode_end_of_rib(*family, out);
    }
    Ok(())
}
