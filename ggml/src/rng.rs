//! A small seeded generator whose output is the same on every platform.
//!
//! SplitMix64 drives everything: it is one add, three xor-shifts and two
//! multiplies per 64 bits, and passes the usual statistical batteries, which is
//! plenty for random weights. Only integer arithmetic and exact float
//! conversions are used (no `ln`, `sin` or `sqrt` from the platform's libm), so
//! a seed yields the same values on every target.
//!
//! Seeds are derived per tensor from the model seed and the tensor's name, and
//! per chunk from the tensor seed and the chunk index, so the order in which
//! tensors or chunks are produced (or the number of threads producing them)
//! never changes a value.

/// The SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a strong 64-bit mixer.
#[must_use]
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes: a stable, dependency-free string hash.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Seed of one tensor: depends only on the model seed and the tensor name.
#[must_use]
pub fn tensor_seed(seed: u64, name: &str) -> u64 {
    mix64(mix64(seed ^ GOLDEN) ^ fnv1a64(name.as_bytes()))
}

/// Seed of one chunk of a tensor: depends only on the tensor seed and the index.
#[must_use]
pub fn chunk_seed(tensor_seed: u64, chunk: u64) -> u64 {
    mix64(tensor_seed ^ mix64(chunk.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// 1 / standard deviation of the sum of four independent uniform 16-bit lanes.
///
/// Each lane has variance (65536² − 1) / 12, so the sum has standard deviation
/// sqrt((65536² − 1) / 3) ≈ 37837.23.
const INV_STD_SUM4: f32 = 1.0 / 37_837.227;
/// Mean of that sum: 4 × 65535 / 2.
const MEAN_SUM4: f32 = 131_070.0;

impl SplitMix64 {
    /// A generator starting from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 24 bits of precision (exact in `f32`).
    pub fn next_unit(&mut self) -> f32 {
        // 24 bits fit an f32 mantissa exactly; the scale is a power of two.
        (self.next_u64() >> 40) as f32 * (1.0 / 16_777_216.0)
    }

    /// Approximately standard normal: the centred, scaled sum of four uniform
    /// 16-bit lanes of one 64-bit draw (Irwin–Hall with n = 4).
    ///
    /// Mean 0, variance 1, bounded by ±3.46: close enough to a Gaussian for
    /// weights, with no transcendental functions involved.
    pub fn next_normal(&mut self) -> f32 {
        let x = self.next_u64();
        let sum = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48);
        // sum < 2^18, exact in f32.
        (sum as f32 - MEAN_SUM4) * INV_STD_SUM4
    }

    /// Uniform in `[0, 1)` with 53 bits of precision (exact in `f64`).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[-1, 1)`: the op tests' input values.
    pub fn next_symmetric(&mut self) -> f32 {
        (self.next_f64() * 2.0 - 1.0) as f32
    }

    /// Uniform in `0..n` by multiply-shift (no modulo bias worth the name for test
    /// sizes); 0 when `n` is 0.
    pub fn next_below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0, as published with the algorithm.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn seeds_depend_on_name_and_seed() {
        assert_eq!(tensor_seed(1, "a"), tensor_seed(1, "a"));
        assert_ne!(tensor_seed(1, "a"), tensor_seed(2, "a"));
        assert_ne!(tensor_seed(1, "a"), tensor_seed(1, "b"));
        assert_ne!(chunk_seed(5, 0), chunk_seed(5, 1));
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = SplitMix64::new(42);
        let n = 200_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let v = f64::from(r.next_normal());
            s += v;
            s2 += v * v;
        }
        let mean = s / f64::from(n);
        let var = s2 / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn ranges_hold() {
        let mut r = SplitMix64::new(11);
        for n in [1usize, 2, 7, 1000] {
            for _ in 0..1000 {
                assert!(r.next_below(n) < n);
                assert!((-1.0..1.0).contains(&r.next_symmetric()));
                assert!((0.0..1.0).contains(&r.next_f64()));
            }
        }
        assert_eq!(r.next_below(0), 0);
    }

    #[test]
    fn unit_is_in_range() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            let u = r.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
