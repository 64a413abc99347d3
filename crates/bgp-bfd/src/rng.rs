//! A tiny seeded generator (xorshift64*) for transmit jitter and discriminator
//! allocation: both need spread and reproducible runs, not secrecy.

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        // Zero is xorshift's fixed point.
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_runs_repeat_and_zero_is_usable() {
        let a: Vec<u32> = (0..4)
            .scan(Rng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        let b: Vec<u32> = (0..4)
            .scan(Rng::new(7), |r, _| Some(r.next_u32()))
            .collect();
        assert_eq!(a, b);
        let mut z = Rng::new(0);
        assert_ne!((z.next_u32(), z.next_u32()), (0, 0));
    }
}
