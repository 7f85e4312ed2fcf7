//! How many long-lived event streams (`GET /mcp`, `subscriptions/listen`)
//! each client holds open. Each stream holds a task and a registry
//! subscription for as long as the client keeps reading, so one client
//! opening thousands would cost every other client; past the cap a new one
//! is refused with 429 until one closes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(crate) struct StreamSlots {
    max_per_client: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream's place; dropping it (the stream ended) frees it.
pub(crate) struct StreamSlot {
    slots: Arc<StreamSlots>,
    client: String,
}

impl StreamSlots {
    pub(crate) fn new(max_per_client: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            max_per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `client`, or `None` when it holds the most it may.
    pub(crate) fn acquire(self: &Arc<Self>, client: &str) -> Option<StreamSlot> {
        // The map holds plain counts: a panic elsewhere cannot leave it
        // inconsistent, so a poisoned lock is still usable.
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(client.to_string()).or_insert(0);
        if *count >= self.max_per_client {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            slots: self.clone(),
            client: client.to_string(),
        })
    }

    #[cfg(test)]
    fn open_for(&self, client: &str) -> usize {
        self.open
            .lock()
            .map(|open| open.get(client).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub(crate) fn max_per_client(&self) -> usize {
        self.max_per_client
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_client_and_freed_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.acquire("a").expect("first");
        let _a2 = slots.acquire("a").expect("second");
        assert!(slots.acquire("a").is_none(), "a third is refused");
        let _b = slots.acquire("b").expect("another client is unaffected");
        drop(a1);
        assert_eq!(slots.open_for("a"), 1);
        assert!(slots.acquire("a").is_some());
    }
}
