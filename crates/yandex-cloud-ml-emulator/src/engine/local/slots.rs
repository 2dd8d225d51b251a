//! Admission to the model: `slots` generations at a time, a bounded queue behind them, and
//! RESOURCE_EXHAUSTED beyond it (the SDK retries that with backoff).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tonic::Status;

#[derive(Debug, Default)]
struct Counts {
    busy: usize,
    waiting: usize,
}

/// The model's slots and queue.
#[derive(Debug)]
pub(crate) struct Slots {
    counts: Mutex<Counts>,
    freed: Condvar,
    slots: usize,
    queue: usize,
}

/// A held slot, released when dropped (the generation ended or its client went away).
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    pub(crate) fn new(slots: usize, queue: usize) -> Slots {
        Slots { counts: Mutex::default(), freed: Condvar::new(), slots, queue }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot, waiting in the queue if all are busy (on a blocking thread).
    pub(crate) fn acquire(self: &Arc<Self>) -> Result<Slot, Status> {
        let mut counts = self.lock();
        if counts.busy >= self.slots && counts.waiting >= self.queue {
            return Err(Status::resource_exhausted(format!(
                "the local model is busy ({} generations running, {} waiting); retry later",
                counts.busy, counts.waiting
            )));
        }
        counts.waiting += 1;
        while counts.busy >= self.slots {
            counts = self.freed.wait(counts).unwrap_or_else(|e| e.into_inner());
        }
        counts.waiting -= 1;
        counts.busy += 1;
        Ok(Slot(self.clone()))
    }

    /// Generations holding a slot now.
    pub(crate) fn busy(&self) -> usize {
        self.lock().busy
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.lock().busy -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_refused_and_a_freed_slot_is_taken() {
        let slots = Arc::new(Slots::new(1, 1));
        let first = slots.acquire().unwrap();
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || slots.acquire().map(|_| ()))
        };
        while slots.lock().waiting == 0 {
            std::thread::yield_now();
        }
        let e = slots.acquire().unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        drop(first);
        waiter.join().unwrap().unwrap();
        assert_eq!(slots.busy(), 0);
    }
}
