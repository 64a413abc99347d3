//! Update generation: turn a peer's queued changes into UPDATE messages.
//!
//! Withdrawals are batched per family; announcements are grouped by outgoing attribute set
//! (interned, so grouping is by pointer) in first-seen order and each group is packed into
//! as few UPDATEs as the negotiated message size allows by the codec's packer
//! (RFC 4271 4.3, RFC 4760, RFC 7911 path ids); End-of-RIB markers (RFC 4724 2) come last.
//!
//! Each group is encoded on its own: a group whose attributes cannot be encoded for the
//! peer (most often, they do not fit its maximum message size: 4096 octets without RFC
//! 8654 extended messages) is reported, with its changes, and the other groups still go
//! out. The caller decides what the peer is told instead (RFC 8654 3: withdrawn).

use bgp_proto::wire::{encode_announcements, encode_end_of_rib, encode_withdrawals, EncodeError};
use bgp_proto::{CodecContext, Family, Nlri};
use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::attrs::RouteAttrs;

/// Changes that could not be encoded: (index of the change in the input, why).
pub(crate) type NotEncoded = Vec<(usize, EncodeError)>;

/// The packer over any handle type `K` naming an attribute set (`attrs_of` resolves it).
/// Returns the announcements that could not be encoded (their group's attributes do
/// not fit, or are not encodable for this peer); their frames are not in `out`. `Err`
/// only for withdrawals, which always fit.
pub(crate) fn encode_with<'s, K: Copy + Eq + std::hash::Hash>(
    changes: impl Iterator<Item = (Family, Nlri, Option<K>)> + Clone,
    attrs_of: impl Fn(K) -> &'s RouteAttrs,
    end_of_rib: &[Family],
    ctx: &CodecContext,
    out: &mut Vec<Bytes>,
) -> Result<NotEncoded, EncodeError> {
    let mut withdraw: Vec<(Family, Vec<Nlri>)> = Vec::new();
    let mut groups: Vec<(Family, K, Vec<Nlri>)> = Vec::new();
    let mut index: FxHashMap<(Family, K), usize> = FxHashMap::default();
    for (family, nlri, attrs) in changes.clone() {
        match attrs {
            None => match withdraw.iter_mut().find(|(f, _)| *f == family) {
                Some((_, v)) => v.push(nlri),
                None => withdraw.push((family, vec![nlri])),
            },
            Some(a) => {
                // Runs of changes sharing a set are the common case: try the last group first.
                if let Some(g) = groups.last_mut() {
                    if g.0 == family && g.1 == a {
                        g.2.push(nlri);
                        continue;
                    }
                }
                match index.get(&(family, a)) {
                    Some(&gi) => {
                        if let Some(g) = groups.get_mut(gi) {
                            g.2.push(nlri);
                        }
                    }
                    None => {
                        index.insert((family, a), groups.len());
                        groups.push((family, a, vec![nlri]));
                    }
                }
            }
        }
    }
    for (family, nlri) in &withdraw {
        encode_withdrawals(*family, nlri, ctx, out)?;
    }
    let mut failed: Vec<((Family, K), EncodeError)> = Vec::new();
    for (family, a, nlri) in &groups {
        let attrs = attrs_of(*a);
        let before = out.len();
        if let Err(e) = encode_announcements(
            *family,
            &attrs.attrs,
            attrs.next_hop.as_ref(),
            nlri,
            ctx,
            out,
        ) {
            // Nothing of a group that failed goes out.
            out.truncate(before);
            failed.push(((*family, *a), e));
        }
    }
    for family in end_of_rib {
        encode_end_of_rib(*family, out);
    }
    if failed.is_empty() {
        return Ok(NotEncoded::new());
    }
    // Rare: find the failed groups' changes again.
    Ok(changes
        .enumerate()
        .filter_map(|(i, (family, _, attrs))| {
            let a = attrs?;
            let (_, e) = failed.iter().find(|(g, _)| *g == (family, a))?;
            Some((i, e.clone()))
        })
        .collect())
}
