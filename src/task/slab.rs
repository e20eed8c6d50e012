//! [`Slab`]: a vector with a free list, for sets that are added to and removed from by key.
//!
//! The executors' registry of live tasks (`owner.rs`) needs three things: add a task and
//! get a small key for it, remove by that key when the task ends, and visit every task (to
//! cancel them all at shutdown). A `Slab` does the first two in O(1) with no hashing: the
//! key is the entry's index, and freed indices are chained through the vacant entries and
//! reused first.

/// A vector with a free list: O(1) insert and remove by key.
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// The first vacant index, or `entries.len()` if none.
    next_free: usize,
    len: usize,
}

enum Entry<T> {
    Occupied(T),
    /// Vacant; holds the next vacant index.
    Vacant(usize),
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            entries: Vec::new(),
            next_free: 0,
            len: 0,
        }
    }

    /// Stores `value` and returns its key.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.next_free;
        if key == self.entries.len() {
            self.entries.push(Entry::Occupied(value));
            self.next_free = key + 1;
        } else {
            let Entry::Vacant(next) = self.entries[key] else {
                unreachable!("free list points at an occupied entry")
            };
            self.entries[key] = Entry::Occupied(value);
            self.next_free = next;
        }
        self.len += 1;
        key
    }

    /// Removes and returns the value at `key`, if there is one.
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        match self.entries.get_mut(key) {
            Some(entry @ Entry::Occupied(_)) => {
                let Entry::Occupied(value) =
                    std::mem::replace(entry, Entry::Vacant(self.next_free))
                else {
                    unreachable!("matched as occupied")
                };
                self.next_free = key;
                self.len -= 1;
                Some(value)
            }
            _ => None,
        }
    }

    /// How many values are stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every stored value, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Slab;

    #[test]
    fn keys_are_reused_and_removals_are_exact() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        let c = slab.insert("c");
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slab.remove(b), Some("b"));
        assert_eq!(slab.remove(b), None, "removed twice");
        assert_eq!(slab.remove(7), None, "never inserted");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.insert("d"), b, "the freed key comes back first");
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(c), Some("c"));
        assert_eq!(slab.insert("e"), c, "last freed, first reused");
        assert_eq!(slab.insert("f"), a);
        assert_eq!(slab.insert("g"), 3);
        let mut all: Vec<_> = slab.iter().copied().collect();
        all.sort_unstable();
        assert_eq!(all, ["d", "e", "f", "g"]);
        assert_eq!(slab.len(), 4);
        for key in 0..4 {
            assert!(slab.remove(key).is_some());
        }
        assert_eq!(slab.len(), 0);
    }
}
