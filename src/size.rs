//! Payload size estimates for the memory budget.
//!
//! The budget counts *estimated* bytes: the payload's inline size plus what it
//! owns on the heap ([`EstimateSize::heap_size`]), plus the envelope, its
//! history and the slot. Estimates are what the user's types say they are;
//! chunkq never walks the allocator.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use uuid::Uuid;

/// How many heap bytes a payload owns, for the memory budget.
///
/// Implemented for the primitives, `String`, `Box<str>`, `Arc<str>`,
/// `Vec<T>`, `VecDeque<T>`, `Box<T>`, `Box<[T]>`, `Arc<T>`, `Arc<[T]>`,
/// `HashMap`, `HashSet`, `BTreeMap`, `BTreeSet`, `Option<T>`, tuples, arrays
/// and [`Uuid`]. The collections' figures are estimates of the standard
/// library's layout (capacity, hash-table control bytes, B-tree nodes),
/// leaning high; chunkq never walks the allocator.
///
/// The default `heap_size` is 0, which is right only for a type that owns
/// nothing on the heap (plain numbers and fields of such types): such a
/// type can opt in with an empty impl. An empty impl on a type that holds a
/// `String`, a `Vec`, a `Box` or a map **under-counts**: the budget then
/// admits more than it should, and the memory limit no longer bounds the
/// real memory. Sum the fields' `heap_size` instead, as below. With the
/// `get-size2` feature, `Builder::get_size2` sizes any
/// `get_size2::GetSize` type instead; [`crate::Builder::sizer`] takes a
/// closure for anything else.
///
/// # Examples
///
/// ```
/// use chunkq::EstimateSize;
///
/// struct Order { id: u64, note: String }
/// impl EstimateSize for Order {
///     fn heap_size(&self) -> usize { self.note.heap_size() }
/// }
///
/// let o = Order { id: 1, note: "fill or kill".into() };
/// assert_eq!(o.heap_size(), o.note.capacity());
/// assert_eq!(vec![1u32, 2, 3].heap_size(), 3 * 4);
/// ```
pub trait EstimateSize {
    /// Bytes owned on the heap (not counting `size_of::<Self>()`). The
    /// default, 0, under-counts any type that owns heap memory (see the
    /// trait docs).
    fn heap_size(&self) -> usize {
        0
    }
}

macro_rules! no_heap {
    ($($t:ty),*) => { $(impl EstimateSize for $t {})* };
}
no_heap!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    Uuid,
    &'static str,
    std::time::Duration,
    std::time::SystemTime,
    std::time::Instant
);

impl EstimateSize for String {
    fn heap_size(&self) -> usize {
        self.capacity()
    }
}

impl<T: EstimateSize> EstimateSize for Vec<T> {
    fn heap_size(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>() + self.iter().map(T::heap_size).sum::<usize>()
    }
}

impl<T: EstimateSize> EstimateSize for Box<[T]> {
    fn heap_size(&self) -> usize {
        std::mem::size_of_val::<[T]>(self) + self.iter().map(T::heap_size).sum::<usize>()
    }
}

impl EstimateSize for Box<str> {
    fn heap_size(&self) -> usize {
        self.len()
    }
}

impl<T: EstimateSize> EstimateSize for Box<T> {
    fn heap_size(&self) -> usize {
        std::mem::size_of::<T>() + (**self).heap_size()
    }
}

/// An `Arc` is counted in full (two counters and the value) even though the
/// allocation may be shared: the budget is an upper bound, never an under-count.
impl<T: EstimateSize> EstimateSize for Arc<T> {
    fn heap_size(&self) -> usize {
        2 * std::mem::size_of::<usize>() + std::mem::size_of::<T>() + (**self).heap_size()
    }
}

impl<T: EstimateSize> EstimateSize for Option<T> {
    fn heap_size(&self) -> usize {
        self.as_ref().map_or(0, T::heap_size)
    }
}

impl<T: EstimateSize, const N: usize> EstimateSize for [T; N] {
    fn heap_size(&self) -> usize {
        self.iter().map(T::heap_size).sum()
    }
}

macro_rules! tuples {
    ($(($($n:tt $t:ident),+)),*) => {$(
        impl<$($t: EstimateSize),+> EstimateSize for ($($t,)+) {
            fn heap_size(&self) -> usize { 0 $(+ self.$n.heap_size())+ }
        }
    )*};
}
tuples!(
    (0 A),
    (0 A, 1 B),
    (0 A, 1 B, 2 C),
    (0 A, 1 B, 2 C, 3 D),
    (0 A, 1 B, 2 C, 3 D, 4 E),
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
);

/// An `Arc<str>` is counted in full (two counters and the text), as
/// `Arc<T>`.
impl EstimateSize for Arc<str> {
    fn heap_size(&self) -> usize {
        2 * std::mem::size_of::<usize>() + self.len()
    }
}

/// An `Arc<[T]>` is counted in full (two counters and the elements), as
/// `Arc<T>`.
impl<T: EstimateSize> EstimateSize for Arc<[T]> {
    fn heap_size(&self) -> usize {
        2 * std::mem::size_of::<usize>()
            + std::mem::size_of_val::<[T]>(self)
            + self.iter().map(T::heap_size).sum::<usize>()
    }
}

impl<T: EstimateSize> EstimateSize for VecDeque<T> {
    fn heap_size(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>() + self.iter().map(T::heap_size).sum::<usize>()
    }
}

/// The table of a `HashMap` or `HashSet` (hashbrown's SwissTable) with room
/// for `capacity` entries of `entry` bytes: a power-of-two number of buckets
/// at most 7/8 full (at least 4), each an entry and a control byte, and one
/// group of 16 trailing control bytes.
fn hash_table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = capacity
        .saturating_mul(8)
        .div_ceil(7)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .max(4);
    buckets.saturating_mul(entry + 1).saturating_add(16)
}

impl<K: EstimateSize, V: EstimateSize, S> EstimateSize for HashMap<K, V, S> {
    fn heap_size(&self) -> usize {
        hash_table_bytes(self.capacity(), std::mem::size_of::<(K, V)>())
            + self
                .iter()
                .map(|(k, v)| k.heap_size() + v.heap_size())
                .sum::<usize>()
    }
}

impl<T: EstimateSize, S> EstimateSize for HashSet<T, S> {
    fn heap_size(&self) -> usize {
        hash_table_bytes(self.capacity(), std::mem::size_of::<T>())
            + self.iter().map(T::heap_size).sum::<usize>()
    }
}

/// The nodes of a `BTreeMap` or `BTreeSet` of `len` entries of `key` and
/// `value` bytes: nodes of up to 11 entries, at least 5 each (but the
/// root), so at most `len / 5 + 1` leaves with a parent pointer and two
/// lengths each; and above them, internal nodes with 12 child pointers.
fn btree_bytes(len: usize, key: usize, value: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let leaf = 16 + 11 * (key + value);
    let leaves = len / 5 + 1;
    let internal = leaves.div_ceil(5);
    leaves
        .saturating_mul(leaf)
        .saturating_add(internal.saturating_mul(leaf + 12 * std::mem::size_of::<usize>()))
}

impl<K: EstimateSize, V: EstimateSize> EstimateSize for BTreeMap<K, V> {
    fn heap_size(&self) -> usize {
        btree_bytes(
            self.len(),
            std::mem::size_of::<K>(),
            std::mem::size_of::<V>(),
        ) + self
            .iter()
            .map(|(k, v)| k.heap_size() + v.heap_size())
            .sum::<usize>()
    }
}

impl<T: EstimateSize> EstimateSize for BTreeSet<T> {
    fn heap_size(&self) -> usize {
        btree_bytes(self.len(), std::mem::size_of::<T>(), 0)
            + self.iter().map(T::heap_size).sum::<usize>()
    }
}

/// A sizing function: heap bytes of one payload.
pub(crate) type SizeFn<T> = Box<dyn Fn(&T) -> usize + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers() {
        let s = String::with_capacity(10);
        assert_eq!(s.heap_size(), 10);
        let v: Vec<String> = vec![String::with_capacity(3), String::with_capacity(4)];
        assert_eq!(v.heap_size(), v.capacity() * 24 + 7);
        assert_eq!(Box::new(5u64).heap_size(), 8);
        let b: Box<[u16]> = vec![1, 2, 3].into_boxed_slice();
        assert_eq!(b.heap_size(), 6);
        assert_eq!(Some(String::with_capacity(2)).heap_size(), 2);
        assert_eq!(None::<String>.heap_size(), 0);
        assert_eq!((1u8, String::with_capacity(5)).heap_size(), 5);
        assert_eq!(
            [String::with_capacity(1), String::with_capacity(2)].heap_size(),
            3
        );
        assert_eq!(Arc::new(1u32).heap_size(), 16 + 4);
        assert_eq!("abc".to_string().into_boxed_str().heap_size(), 3);
        assert_eq!(Uuid::nil().heap_size(), 0);
    }
}
