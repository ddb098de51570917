//! Reclamation under loom: the subset of crossbeam-epoch's API that chunkq
//! uses, with the same deferral rule made exact and invisible to loom.
//!
//! Why not crossbeam-epoch itself (with `crossbeam_loom`):
//! - every `pin` runs a loom `fence(SeqCst)` (crossbeam's stand-in for its
//!   `compiler_fence`), which loom models as a global synchronisation point:
//!   any `Release` store made after a pin is then ordered before every later
//!   reader, so weakening chunkq's publication to `Relaxed` goes unnoticed;
//! - a thread's first pin registers it and collects (dozens of loom branch
//!   points per thread), which dominates the models' running time;
//! - garbage is only collected at a thread's first and every 128th pin, so in
//!   a model it is dropped at the collector's teardown, after the execution:
//!   a premature free could never be observed; and a deferred function that
//!   pins (the slot clearing in `log/mod.rs`) panics there ("attempted to access
//!   lazy_static during shutdown").
//!
//! Here, a guard is a counter of live guards; deferred functions run at the
//! next pin made while no guard is alive (a quiescent state: nothing loaded
//! under an older guard can still be in use), inside that `pin` as in
//! crossbeam, or at once under `unprotected()`, or when a log is dropped
//! in a quiescent state. loom runs
//! all threads of a model as coroutines on one OS thread, so a thread-local
//! counter sees every guard of the model, and plain `Cell`s add no loom
//! branches; the happens-before edges crossbeam's epoch fences provide are
//! carried by one loom atomic (`EPOCH`, see `push_garbage`). The pointers themselves stay loom
//! atomics with chunkq's orderings.

use super::Ordering;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

type Deferred = Box<dyn FnOnce()>;

loom::lazy_static! {
    /// Carries the happens-before edges crossbeam's epoch fences give
    /// (see `push_garbage` and `pin`). A loom lazy static is created
    /// afresh in each execution, visible to every model thread.
    static ref EPOCH: loom::sync::atomic::AtomicUsize =
        loom::sync::atomic::AtomicUsize::new(0);
}

/// Queues `f` to run at a later quiescent point. The garbage list is a
/// plain thread-local that loom does not see, so the edges crossbeam's
/// epoch protocol provides are made explicit through `EPOCH`: a
/// `Release` RMW here, before the function is queued, and an `AcqRel`
/// RMW at every `pin` (an RMW reads the latest value, so it
/// synchronizes with every deferral before it), and a `Release` RMW at
/// every unpin (so what a thread did under a guard happens before the
/// deferred functions that run once the guard is gone). So the thread that runs
/// `f` (which pinned after the deferral) sees everything the deferring
/// thread did before `defer`, and so does every thread that pins after
/// a collection decided to run `f`: it cannot reach what `f` frees.
/// (This is stronger than crossbeam, which guarantees the edge only for
/// garbage actually collected; a thread pinning concurrently with a
/// deferral may see more here than it would there.)
fn push_garbage(f: impl FnOnce() + 'static) {
    // Release: pairs with the AcqRel RMW in `pin`.
    EPOCH.fetch_add(1, Ordering::Release);
    GARBAGE.with(|g| g.borrow_mut().push(Box::new(f)));
}

thread_local! {
    /// Live (protected) guards of the model on this OS thread.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// Functions deferred until no guard is alive.
    static GARBAGE: RefCell<Vec<Deferred>> = const { RefCell::new(Vec::new()) };
}

/// Runs the functions deferred so far: one batch, taken when no guard
/// is alive. Functions deferred while the batch runs wait for the next
/// quiescent point: loom may switch threads inside a deferred function
/// (it touches loom atomics), another thread may pin and load pointers
/// meanwhile, and garbage deferred after that pin must wait for it.
fn collect() {
    let batch = GARBAGE.with(|g| std::mem::take(&mut *g.borrow_mut()));
    for f in batch {
        f();
    }
}

/// Runs everything deferred, including what the deferred functions
/// defer in turn, when no guard is alive. Only for the end of a model
/// execution, a log's drop, or a chunk released after its queue is gone
/// (nobody holds a guard then, so nothing loaded under one is in use):
/// nothing deferred must outlive the execution whose loom objects it
/// touches.
pub(crate) fn quiesce() {
    // AcqRel: as in `pin` (this runs outside any pin).
    EPOCH.fetch_add(0, Ordering::AcqRel);
    while LIVE.with(|n| n.get()) == 0 && GARBAGE.with(|g| !g.borrow().is_empty()) {
        collect();
    }
}

/// A pinned (or unprotected) participant.
#[derive(Debug)]
pub(crate) struct Guard {
    /// `unprotected()`: deferred functions run at once.
    unprotected: bool,
}

/// Pins the current thread. Like crossbeam-epoch, which collects
/// inside `pin` (on a thread's outermost pin), this runs the deferred
/// functions here, with the new guard already counted: so the models
/// see user code (a payload's `Drop`) run on whichever thread pins next,
/// at the point where it pins (invariant 7). It is safe to run them: no
/// guard was alive before this one, and this one has loaded nothing.
pub(crate) fn pin() -> Guard {
    // AcqRel: pairs with the Release RMW of every deferral, and with
    // every earlier pin (see `push_garbage`). No loom operation stands
    // between it and the decision to collect below, so no deferral can
    // slip in between.
    EPOCH.fetch_add(0, Ordering::AcqRel);
    let before = LIVE.with(|n| {
        let before = n.get();
        n.set(before + 1);
        before
    });
    if before == 0 {
        collect();
    }
    Guard { unprotected: false }
}

/// A guard that protects nothing: deferred functions run at once.
///
/// # Safety
/// As crossbeam-epoch's `unprotected`.
pub(crate) unsafe fn unprotected() -> &'static Guard {
    static UNPROTECTED: Guard = Guard { unprotected: true };
    &UNPROTECTED
}

impl Guard {
    /// Runs `f` once no guard is alive.
    pub(crate) fn defer<F, R>(&self, f: F)
    where
        F: FnOnce() -> R + Send + 'static,
    {
        if self.unprotected {
            drop(f());
        } else {
            push_garbage(move || drop(f()));
        }
    }

    /// Unpins while `f` runs, then pins again, as crossbeam's
    /// `repin_after`: this guard's drop, `f`, then a `pin` whose count
    /// this guard takes over. (Crossbeam stays pinned when the thread holds
    /// another guard; here the count of live guards covers every model
    /// thread, so another guard keeps the garbage waiting just the same.)
    pub(crate) fn repin_after<F: FnOnce() -> R, R>(&mut self, f: F) -> R {
        if self.unprotected {
            return f();
        }
        // As `drop`: the loom operation first, then the count, with no
        // loom operation between (another model thread may run at one).
        EPOCH.fetch_add(0, Ordering::Release);
        LIVE.with(|n| n.set(n.get() - 1));
        let r = f();
        std::mem::forget(pin());
        r
    }

    /// crossbeam's `flush` hands the thread's garbage to the global
    /// collector and collects; here garbage is global already, and it
    /// runs at the next quiescent pin.
    pub(crate) fn flush(&self) {}

    /// Drops the object `ptr` points to once no guard is alive.
    ///
    /// # Safety
    /// As crossbeam-epoch's `Guard::defer_destroy`.
    pub(crate) unsafe fn defer_destroy<T>(&self, ptr: Shared<'_, T>) {
        let raw = ptr.ptr as usize;
        let destroy = move || drop(unsafe { Box::from_raw(raw as *mut T) });
        if self.unprotected {
            destroy();
        } else {
            push_garbage(destroy);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.unprotected {
            return;
        }
        // Release: crossbeam's unpin is a Release store of the thread's
        // epoch, which the collector reads before it frees anything; so
        // everything done under this guard happens before a deferred
        // function that runs after it (pairs with the AcqRel RMW in `pin`,
        // which collects only once every guard is gone).
        EPOCH.fetch_add(0, Ordering::Release);
        // Garbage waits for the next outermost `pin` (or teardown), as
        // in crossbeam-epoch.
        LIVE.with(|n| n.set(n.get() - 1));
    }
}

/// An atomic pointer (a loom `AtomicPtr`).
#[derive(Debug)]
pub(crate) struct Atomic<T> {
    /// The pointer.
    ptr: loom::sync::atomic::AtomicPtr<T>,
}

// SAFETY: as crossbeam-epoch's `Atomic`.
unsafe impl<T: Send + Sync> Send for Atomic<T> {}
// SAFETY: as crossbeam-epoch's `Atomic`.
unsafe impl<T: Send + Sync> Sync for Atomic<T> {}

/// What `compare_exchange` gives back on failure.
pub(crate) struct CompareExchangeError<'g, T, P> {
    /// The value found.
    pub(crate) current: Shared<'g, T>,
    /// The value that was not stored.
    #[allow(dead_code)]
    pub(crate) new: P,
}

/// `Owned` or `Shared`.
pub(crate) trait Pointer<T> {
    /// The raw pointer, giving up ownership.
    fn into_ptr(self) -> *mut T;
    /// Rebuilds the pointer.
    ///
    /// # Safety
    /// `ptr` came from `into_ptr` of the same type.
    unsafe fn from_ptr(ptr: *mut T) -> Self;
}

impl<T> Atomic<T> {
    /// Null.
    pub(crate) fn null() -> Self {
        Self {
            ptr: loom::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// A new heap value.
    pub(crate) fn new(value: T) -> Self {
        Self {
            ptr: loom::sync::atomic::AtomicPtr::new(Box::into_raw(Box::new(value))),
        }
    }

    /// Loads the pointer.
    pub(crate) fn load<'g>(&self, ord: Ordering, _: &'g Guard) -> Shared<'g, T> {
        Shared::from_raw(self.ptr.load(ord))
    }

    /// Swaps the pointer.
    pub(crate) fn swap<'g, P: Pointer<T>>(
        &self,
        new: P,
        ord: Ordering,
        _: &'g Guard,
    ) -> Shared<'g, T> {
        Shared::from_raw(self.ptr.swap(new.into_ptr(), ord))
    }

    /// Compare-and-exchange.
    pub(crate) fn compare_exchange<'g, P: Pointer<T>>(
        &self,
        current: Shared<'_, T>,
        new: P,
        success: Ordering,
        failure: Ordering,
        _: &'g Guard,
    ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T, P>> {
        let new = new.into_ptr();
        match self
            .ptr
            .compare_exchange(current.ptr, new, success, failure)
        {
            Ok(_) => Ok(Shared::from_raw(new)),
            Err(found) => Err(CompareExchangeError {
                current: Shared::from_raw(found),
                // SAFETY: `new` came from `into_ptr` just above.
                new: unsafe { P::from_ptr(new) },
            }),
        }
    }
}

impl<'g, T> From<Shared<'g, T>> for Atomic<T> {
    fn from(s: Shared<'g, T>) -> Self {
        Self {
            ptr: loom::sync::atomic::AtomicPtr::new(s.ptr),
        }
    }
}

/// A pointer loaded under a guard.
#[derive(Debug)]
pub(crate) struct Shared<'g, T> {
    /// The pointer.
    ptr: *mut T,
    /// The guard's lifetime.
    _guard: PhantomData<&'g ()>,
}

impl<T> Clone for Shared<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<'_, T> {}
impl<T> PartialEq for Shared<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl<T> Eq for Shared<'_, T> {}

impl<'g, T> Shared<'g, T> {
    /// From a raw pointer.
    fn from_raw(ptr: *mut T) -> Self {
        Self {
            ptr,
            _guard: PhantomData,
        }
    }

    /// Null.
    pub(crate) fn null() -> Self {
        Self::from_raw(std::ptr::null_mut())
    }

    /// Whether null.
    /// The raw pointer.
    pub(crate) fn as_raw(&self) -> *const T {
        self.ptr
    }

    pub(crate) fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    /// The pointee, or `None` if null.
    ///
    /// # Safety
    /// As crossbeam-epoch's `Shared::as_ref`.
    pub(crate) unsafe fn as_ref(&self) -> Option<&'g T> {
        // SAFETY: the caller's.
        unsafe { self.ptr.as_ref() }
    }

    /// The pointee.
    ///
    /// # Safety
    /// As crossbeam-epoch's `Shared::deref`.
    pub(crate) unsafe fn deref(&self) -> &'g T {
        // SAFETY: the caller's.
        unsafe { &*self.ptr }
    }

    /// Takes ownership.
    ///
    /// # Safety
    /// As crossbeam-epoch's `Shared::into_owned`.
    pub(crate) unsafe fn into_owned(self) -> Owned<T> {
        // SAFETY: the caller's; the pointer came from a `Box`.
        Owned(unsafe { Box::from_raw(self.ptr) })
    }
}

impl<T> From<*const T> for Shared<'_, T> {
    fn from(ptr: *const T) -> Self {
        Self::from_raw(ptr.cast_mut())
    }
}

impl<T> Pointer<T> for Shared<'_, T> {
    fn into_ptr(self) -> *mut T {
        self.ptr
    }
    unsafe fn from_ptr(ptr: *mut T) -> Self {
        Self::from_raw(ptr)
    }
}

/// An owned heap value.
#[derive(Debug)]
pub(crate) struct Owned<T>(Box<T>);

impl<T> Owned<T> {
    /// Boxes `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(Box::new(value))
    }

    /// Shares it.
    pub(crate) fn into_shared<'g>(self, _: &'g Guard) -> Shared<'g, T> {
        Shared::from_raw(Box::into_raw(self.0))
    }

    /// The box back (a value that was never shared).
    pub(crate) fn into_box(self) -> Box<T> {
        self.0
    }
}

impl<T> From<Box<T>> for Owned<T> {
    fn from(b: Box<T>) -> Self {
        Self(b)
    }
}

impl<T> Pointer<T> for Owned<T> {
    fn into_ptr(self) -> *mut T {
        Box::into_raw(self.0)
    }
    unsafe fn from_ptr(ptr: *mut T) -> Self {
        // SAFETY: the caller's: `ptr` came from `into_ptr`.
        Self(unsafe { Box::from_raw(ptr) })
    }
}
