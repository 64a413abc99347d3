//! End-to-end tests of the speaker in process that need a test-only hook inside it (such as
//! stalling the RIB task), so they live in the crate rather than in `tests/`.

mod rib_stall;
