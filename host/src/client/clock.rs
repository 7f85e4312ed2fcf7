//! Time as the client's retry rules see it. The CLI waits on the real
//! clock; tests swap in [`FakeClock`], which returns at once and remembers
//! every wait, so a 30-second `Retry-After` is asserted exactly without
//! taking 30 seconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    fn sleep(&self, duration: Duration) -> Wait<'_>;
}

/// The wall clock and tokio's timer.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Wait<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when slept on, recording each sleep.
#[derive(Clone)]
pub struct FakeClock {
    state: Arc<Mutex<(SystemTime, Vec<Duration>)>>,
}

impl FakeClock {
    pub fn starting_at(now: SystemTime) -> FakeClock {
        FakeClock {
            state: Arc::new(Mutex::new((now, Vec::new()))),
        }
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.lock().map(|s| s.1.clone()).unwrap_or_default()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.state
            .lock()
            .map(|s| s.0)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn sleep(&self, duration: Duration) -> Wait<'_> {
        if let Ok(mut state) = self.state.lock() {
            state.0 += duration;
            state.1.push(duration);
        }
        Box::pin(std::future::ready(()))
    }
}
