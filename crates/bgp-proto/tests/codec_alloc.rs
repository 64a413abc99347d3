//! Allocation budget of the common decode path, counted with a wrapping global allocator
//! (this test binary holds a single test so nothing else allocates meanwhile).
//!
//! A typical route's attribute block (ORIGIN, a 5-AS AS_PATH, NEXT_HOP, MED, two
//! communities) costs exactly the vectors `PathAttributes` owns: the AS_PATH segment list,
//! its AS list and the community list. An UPDATE adds the NLRI vector only, whatever the
//! number of prefixes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bgp_proto::wire::{
    decode_message, decode_path_attributes, encode_message, Inbound, MpReachForm,
};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Community, Message, Nlri, Origin, PathAttributes, SegmentType,
    Update,
};
use bytes::BytesMut;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let out = f();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, out)
}

#[test]
fn common_path_allocates_only_the_owned_vectors() {
    let ctx = CodecContext::default();
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![1853, 20965, 3549, 7170, 1455],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(193, 203, 0, 19)),
        med: Some(220),
        communities: vec![Community::new(3257, 4000), Community::new(3257, 5049)],
        ..PathAttributes::default()
    };
    for n in [1u32, 500] {
        let update = Update {
            attributes: attributes.clone(),
            nlri: (0..n)
                .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
                .collect(),
            ..Update::default()
        };
        let mut wire = BytesMut::new();
        encode_message(&Message::Update(update.clone()), &ctx, &mut wire).unwrap();
        let block = wire.get(23..wire.len() - 4 * n as usize).unwrap().to_vec();

        let (count, decoded) = allocations_during(|| {
            decode_path_attributes(&block, &ctx, MpReachForm::Standard).unwrap()
        });
        assert_eq!(decoded.attributes, attributes);
        assert_eq!(count, 3, "AS_PATH segments, AS list, communities");

        let (count, decoded) = allocations_during(|| decode_message(&wire, &ctx).unwrap());
        let Inbound::Update(d) = decoded else {
            panic!("not an UPDATE")
        };
        assert_eq!(d.update, update);
        assert_eq!(
            count, 4,
            "{n} prefixes: the attribute vectors plus the NLRI vector"
        );
    }
}
