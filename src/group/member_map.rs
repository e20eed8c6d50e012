//! Optimisation: where a group keeps its members, and how it counts them; measured in
//! docs/performance.md (rounds two and three: the member map's order, the counts in one
//! word).
//!
//! The plain version is a `HashMap<TaskId, TaskRef>` and two counters. This one keeps the
//! members in spawn order (a cancel then walks their task blocks in allocation order) and
//! the live and cancelled counts in one atomic word (a cancelled member's exit is one
//! atomic add).

use crate::loom::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::task::{TaskId, TaskRef};

/// A group's live and cancelled member counts, in one atomic word (see
/// `GroupInner::counts`).
pub(super) struct MemberCounts(AtomicU64);

/// The live count's bits.
const LIVE: u64 = u32::MAX as u64;
/// One cancelled member, in the cancelled count's bits.
const ONE_CANCELLED: u64 = 1 << 32;

impl MemberCounts {
    pub(super) fn new() -> MemberCounts {
        MemberCounts(AtomicU64::new(0))
    }

    /// One more live member.
    pub(super) fn register(&self) {
        let before = self.0.fetch_add(1, Ordering::Relaxed);
        debug_assert!(before & LIVE < LIVE, "2^32 live members in one group");
    }

    /// One live member fewer, and one more cancelled if it was: adding `ONE_CANCELLED - 1`
    /// to a word whose live count is at least 1 takes 1 from it and carries 1 into the
    /// cancelled count, in one operation. Returns `true` for the last live member. The
    /// `Release` half publishes the exit (recorded before) to `live`'s `Acquire` load.
    pub(super) fn exit(&self, cancelled: bool) -> bool {
        let before = if cancelled {
            self.0.fetch_add(ONE_CANCELLED - 1, Ordering::AcqRel)
        } else {
            self.0.fetch_sub(1, Ordering::AcqRel)
        };
        debug_assert!(before & LIVE > 0, "a group member exited twice");
        before & LIVE == 1
    }

    /// Members registered and not yet exited.
    pub(super) fn live(&self) -> u64 {
        self.0.load(Ordering::Acquire) & LIVE
    }

    /// Members that ended cancelled (counted modulo 2^32).
    pub(super) fn cancelled(&self) -> usize {
        (self.0.load(Ordering::Relaxed) >> 32) as usize
    }
}

/// A group's unfinished members, by task id.
pub(super) type MemberMap = HashMap<TaskId, TaskRef, BuildHasherDefault<IdHasher>>;

/// The members in the order a cancel wakes them: the map's own, which is close to spawn
/// order (see [`IdHasher`]), except under loom, where it is exactly spawn order. (The
/// map's order follows the ids, which differ from one loom execution to the next, and a
/// model must replay the same steps.)
pub(super) fn wake_order(members: &MemberMap) -> impl Iterator<Item = &TaskRef> {
    #[cfg(not(all(loom, test)))]
    return members.values();
    #[cfg(all(loom, test))]
    {
        let mut sorted: Vec<&TaskRef> = members.values().collect();
        sorted.sort_by_key(|member| member.header().info.id());
        sorted.into_iter()
    }
}

/// As [`wake_order`], taking the references.
pub(super) fn into_wake_order(members: MemberMap) -> impl Iterator<Item = TaskRef> {
    #[cfg(not(all(loom, test)))]
    return members.into_values();
    #[cfg(all(loom, test))]
    {
        let mut sorted: Vec<TaskRef> = members.into_values().collect();
        sorted.sort_by_key(|member| member.header().info.id());
        sorted.into_iter()
    }
}

/// Hashes a [`TaskId`] cheaply (no SipHash on every spawn and exit), and so that the
/// member map keeps its members roughly in spawn order.
///
/// Order matters for a cancel, which wakes the members in the map's order: their task
/// blocks were allocated one after another as they were spawned, so walking them in spawn
/// order lets the CPU prefetch the next block, while a scattered order costs a cache miss
/// per member, on the cancelling thread and again on the worker that drops the future
/// (`docs/performance.md`, round three). The table places an entry by the hash's low bits
/// and tells entries apart within a probe by its top 7, so:
///
/// * the low bits are the id plus an offset that is the same for each run of 65 536
///   consecutive ids: within a run, consecutive ids fill consecutive buckets, in order
///   (members spawned among other tasks leave gaps, but keep their order). Ids that wrap
///   around the table onto one bucket must be a multiple of its size apart *and* in one
///   run, so at most 65 536 / capacity of them meet there; the runs land at scattered
///   places. (A plain multiplication piles ids 256 apart onto a few buckets: its low bits
///   depend only on the id's low bits.)
/// * the top 7 bits come from the whole id multiplied, so that neighbours differ there.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing's multiplier: odd, with well-mixed high bits.
        const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
        const TAG: u64 = !0 << 57;
        // The run's offset: the product's high half, which depends on every bit of the run
        // number (its low half does not, for run numbers with trailing zeros).
        let offset = (n >> RUN_BITS).wrapping_mul(MUL).rotate_left(32);
        let placed = n.wrapping_add(offset);
        self.0 = (placed & !TAG) | (n.wrapping_mul(MUL) & TAG);
    }
}

/// Runs of `1 << RUN_BITS` consecutive ids stay together in a member map (see [`IdHasher`]).
const RUN_BITS: u32 = 16;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{BuildHasherDefault, HashMap, IdHasher};
    use std::hash::BuildHasher;

    fn hash(id: u64) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(id)
    }

    /// The longest run of ids that the map's iteration visits in increasing order (not
    /// necessarily next to each other): the members a cancel reaches in spawn order.
    fn longest_increasing(ids: impl IntoIterator<Item = u64>) -> usize {
        let map: HashMap<u64, (), BuildHasherDefault<IdHasher>> =
            ids.into_iter().map(|id| (id, ())).collect();
        // Patience sorting: `tails[k]` is the smallest last id of an increasing run of
        // length k + 1 seen so far.
        let mut tails: Vec<u64> = Vec::new();
        for &id in map.keys() {
            let at = tails.partition_point(|&tail| tail < id);
            if at == tails.len() {
                tails.push(id);
            } else {
                tails[at] = id;
            }
        }
        tails.len()
    }

    #[test]
    fn a_member_map_iterates_mostly_in_spawn_order() {
        // Consecutive ids fill consecutive buckets; where they wrap around the table, or
        // cross into the next run (whose buckets may overlap the first's), two increasing
        // sequences interleave, so at least half of the members are in order. A hash that
        // scatters ids (a plain multiplication) keeps about 2 * sqrt(n) of them in order.
        for start in [1, 60_000, 1 << 40] {
            let found = longest_increasing(start..start + 10_000);
            assert!(
                found >= 5_000,
                "{found} of 10 000 ids from {start} in order"
            );
        }
        // Members spawned among other tasks (every 3rd id).
        let found = longest_increasing((0..10_000).map(|i| 1 + 3 * i));
        assert!(found >= 5_000, "{found} of 10 000 ids, stride 3, in order");
    }

    #[test]
    fn strided_ids_do_not_pile_onto_one_bucket() {
        // With the id itself as the position, ids 16 384 apart would all share a bucket
        // of a 16 384-bucket table.
        for stride in [2, 16, 256, 1_024, 16_384] {
            let mut per_bucket = vec![0u32; 1 << 14];
            for i in 0..10_000u64 {
                per_bucket[(hash(1 + i * stride) & ((1 << 14) - 1)) as usize] += 1;
            }
            let worst = per_bucket.iter().max().copied().unwrap_or(0);
            assert!(worst <= 16, "stride {stride}: {worst} ids in one bucket");
        }
    }

    #[test]
    fn neighbours_differ_in_the_tag_bits() {
        let tags: std::collections::HashSet<u64> = (1..=64).map(|id| hash(id) >> 57).collect();
        assert!(
            tags.len() >= 32,
            "only {} distinct tags for 64 ids",
            tags.len()
        );
    }
}
