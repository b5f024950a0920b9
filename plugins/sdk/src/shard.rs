//! Which shard of a split source reads an input.
//!
//! A source with `shards = N` runs as N units, each with the plugin options
//! `shard = i` and `shards = N` added by the daemon; in a cluster the units
//! run on different daemons over the same shared directory. A plugin that
//! declares the option `shard` reads only the inputs whose name this
//! function maps to its shard, so each input is read by exactly one unit
//! without the units ever talking to each other. The name must be the same
//! on every host (a file name, not an inode or a mount path).

/// The shard of `name` among `shards` (FNV-1a, 64 bits, modulo `shards`):
/// stable across hosts, builds and versions, since every daemon of a cluster
/// must agree on it.
///
/// # Panics
/// If `shards` is 0.
pub fn of(name: &[u8], shards: u32) -> u32 {
    assert!(shards > 0, "a source has at least one shard");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(hash % u64::from(shards)).expect("below shards, a u32")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every daemon of a cluster must compute the same shard, whatever its
    /// build: these values are the contract, not an implementation detail.
    #[test]
    fn shards_are_fixed_values_every_build_agrees_on() {
        // FNV-1a 64 of "" is its offset basis, of "a" 0xaf63dc4c8601ec8c.
        assert_eq!(
            u64::from(of(b"", 1_000_003)),
            0xcbf2_9ce4_8422_2325_u64 % 1_000_003
        );
        assert_eq!(
            u64::from(of(b"a", u32::MAX)),
            0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)
        );
        assert_eq!(of(b"orders-0001.csv", 1), 0);
    }

    #[test]
    fn thirty_files_spread_over_three_shards() {
        let mut counts = [0; 3];
        for i in 0..30 {
            counts[of(format!("part-{i:03}.csv").as_bytes(), 3) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c >= 5), "{counts:?}");
    }
}
