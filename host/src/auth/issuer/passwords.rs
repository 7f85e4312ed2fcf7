//! A bound on argon2 runs in flight. Each takes 19 MiB and a blocking
//! thread for tens of milliseconds, so unbounded sign-in attempts could
//! exhaust memory or the blocking pool; beyond the bound they wait briefly,
//! then are turned away.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// How long an attempt waits for a free slot before it is told to retry.
const WAIT: Duration = Duration::from_secs(10);

pub(super) struct PasswordChecks {
    slots: Arc<Semaphore>,
    wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CheckError {
    #[error("every password check slot stayed busy")]
    Busy,
    #[error("the password check did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl PasswordChecks {
    pub(super) fn new(slots: u32) -> PasswordChecks {
        PasswordChecks {
            slots: Arc::new(Semaphore::new(slots.max(1) as usize)),
            wait: WAIT,
        }
    }

    /// Runs `check` on the blocking pool once a slot is free. The slot
    /// moves into the blocking task, so a caller that goes away does not
    /// free it before the hash is done.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        check: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, CheckError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| CheckError::Busy)?
            .map_err(|_| CheckError::Busy)?;
        Ok(tokio::task::spawn_blocking(move || {
            let result = check();
            drop(permit);
            result
        })
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_bound_run_at_once() {
        let checks = Arc::new(PasswordChecks::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (checks, running, most, gate) =
                (checks.clone(), running.clone(), most.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                checks
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Held until the test releases one check.
                        let _ = gate.lock().map(|g| g.recv());
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            }));
        }
        // Wait until two checks hold their slots, then give the rest a
        // chance to (wrongly) start too.
        while running.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(running.load(Ordering::SeqCst), 2);
        for _ in 0..6 {
            release.send(()).expect("a check is waiting");
        }
        for task in tasks {
            task.await.expect("task").expect("check");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_check_that_cannot_get_a_slot_is_turned_away() {
        let mut checks = PasswordChecks::new(1);
        checks.wait = Duration::from_millis(50);
        let held = checks.slots.clone().acquire_owned().await.expect("slot");
        assert!(matches!(checks.run(|| ()).await, Err(CheckError::Busy)));
        drop(held);
        assert!(checks.run(|| 7).await.is_ok_and(|v| v == 7));
    }
}
