//! Per-account backoff for password guessing. Every attempt at an account
//! counts as a failure until it succeeds (so parallel guesses cannot slip
//! past the budget); after `failures` in a row, the account refuses every
//! attempt, right password or not, for a backoff that doubles with each
//! further failure. A success clears the account.
//!
//! Accounts are the names typed into the form, whether or not they exist,
//! so the backoff does not reveal which names do. The table is bounded: when
//! it is full of recent failures, attempts at names it does not hold are
//! refused too (failing closed) rather than letting a flood of made-up names
//! push a real account's count out.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::{Durable, StateError};

/// Longest backoff, however many failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// An account with no failed attempt for this long starts afresh.
const FORGET_AFTER_MS: u64 = 3600 * 1000;
const MAX_ACCOUNTS: u64 = 10_000;
/// Names longer than any valid user name are kept this long as keys.
const MAX_KEY: usize = 128;
/// The accounts' records among the state database's flows.
const KIND: &str = "password-throttle";
/// Compare-and-swap rounds before an attempt is refused as contended.
const ROUNDS: usize = 8;

/// The accounts' counts live in the state database, so every replica
/// counts one attempt at an account once, and an attacker spreading
/// guesses over replicas gets no more than at one.
pub(super) struct Throttle {
    store: Arc<Durable>,
    failures: u32,
    backoff: Duration,
    max_accounts: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Account {
    /// Attempts since the last success (in flight ones included).
    attempts: u32,
    last_attempt_ms: u64,
    /// Unix ms before which every attempt is refused.
    locked_until_ms: u64,
}

/// An admitted attempt. `locks` says this attempt started a backoff, if
/// it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Admitted {
    pub(super) locks: Option<Duration>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused {
    pub(super) retry_after: Duration,
}

impl Throttle {
    pub(super) fn new(store: Arc<Durable>, failures: u32, backoff: Duration) -> Throttle {
        Throttle {
            store,
            failures,
            backoff,
            max_accounts: MAX_ACCOUNTS,
        }
    }

    /// Whether `name` may try a password now; counts the attempt. The
    /// count is a compare-and-swap on the account's record, so parallel
    /// attempts on any replicas each count.
    pub(super) async fn admit(
        &self,
        name: &str,
        now_ms: u64,
    ) -> Result<Result<Admitted, Refused>, StateError> {
        if self.failures == 0 {
            return Ok(Ok(Admitted { locks: None }));
        }
        let key = key(name);
        let now = now_ms / 1000;
        for _ in 0..ROUNDS {
            let stored = self.store.flow(KIND, &key, now).await?;
            let before = stored
                .as_deref()
                .and_then(|body| serde_json::from_str::<Account>(body).ok());
            let (after, outcome) = match self.step(before, now_ms) {
                Ok(counted) => counted,
                Err(refused) => return Ok(Err(refused)),
            };
            let body =
                serde_json::to_string(&after).map_err(|e| StateError::Corrupt(e.to_string()))?;
            let expires = after
                .last_attempt_ms
                .saturating_add(FORGET_AFTER_MS)
                .max(after.locked_until_ms)
                / 1000
                + 1;
            let counted = match &stored {
                None => match self
                    .store
                    .create_flow(KIND, &key, &body, expires, self.max_accounts, now)
                    .await?
                {
                    Ok(created) => created,
                    // Full of recent failures: names it does not hold are
                    // refused rather than pushing a real account out.
                    Err(_) => {
                        return Ok(Err(Refused {
                            retry_after: Duration::from_secs(60),
                        }));
                    }
                },
                Some(old) => {
                    self.store
                        .swap_flow_until(KIND, &key, old, &body, Some(expires))
                        .await?
                }
            };
            if counted {
                return Ok(Ok(outcome));
            }
        }
        // Other attempts kept winning the swap: a flood on this account.
        Ok(Err(Refused {
            retry_after: Duration::from_secs(1),
        }))
    }

    /// The account as this attempt leaves it, or why it is refused.
    fn step(&self, before: Option<Account>, now_ms: u64) -> Result<(Account, Admitted), Refused> {
        let mut account = before.unwrap_or(Account {
            attempts: 0,
            last_attempt_ms: now_ms,
            locked_until_ms: 0,
        });
        if now_ms.saturating_sub(account.last_attempt_ms) > FORGET_AFTER_MS {
            account.attempts = 0;
        }
        if account.locked_until_ms > now_ms {
            return Err(Refused {
                retry_after: Duration::from_millis(account.locked_until_ms - now_ms),
            });
        }
        account.attempts += 1;
        account.last_attempt_ms = now_ms;
        if account.attempts < self.failures {
            return Ok((account, Admitted { locks: None }));
        }
        let doublings = (account.attempts - self.failures).min(16);
        let backoff = self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        account.locked_until_ms = now_ms.saturating_add(backoff.as_millis() as u64);
        Ok((
            account,
            Admitted {
                locks: Some(backoff),
            },
        ))
    }

    /// The password was right: the account starts afresh.
    pub(super) async fn succeeded(&self, name: &str) -> Result<(), StateError> {
        self.store.drop_flow(KIND, &key(name)).await
    }
}

fn key(name: &str) -> String {
    let mut end = name.len().min(MAX_KEY);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::scratch;

    const MIN: u64 = 60_000;

    async fn admit(throttle: &Throttle, name: &str, t: u64) -> Result<Admitted, Refused> {
        throttle.admit(name, t).await.expect("state database")
    }

    #[tokio::test]
    async fn an_account_backs_off_after_its_failures_and_doubles() {
        let s = scratch().await;
        let throttle = Throttle::new(s.durable.clone(), 3, Duration::from_secs(60));
        let t = 1_000_000_000;
        assert_eq!(
            admit(&throttle, "alice", t).await,
            Ok(Admitted { locks: None })
        );
        assert_eq!(
            admit(&throttle, "alice", t).await,
            Ok(Admitted { locks: None })
        );
        assert_eq!(
            admit(&throttle, "alice", t).await,
            Ok(Admitted {
                locks: Some(Duration::from_secs(60))
            })
        );
        // Locked: even the right password is not tried.
        assert_eq!(
            admit(&throttle, "alice", t + 1000).await,
            Err(Refused {
                retry_after: Duration::from_secs(59)
            })
        );
        // Another account is not affected.
        assert!(admit(&throttle, "bob", t).await.is_ok());
        // After the backoff one more try; failing it doubles the wait.
        assert_eq!(
            admit(&throttle, "alice", t + MIN).await,
            Ok(Admitted {
                locks: Some(Duration::from_secs(120))
            })
        );
        assert!(admit(&throttle, "alice", t + 2 * MIN).await.is_err());
        // A success clears the account.
        throttle.succeeded("alice").await.expect("clear");
        assert_eq!(
            admit(&throttle, "alice", t + 2 * MIN).await,
            Ok(Admitted { locks: None })
        );
    }

    #[tokio::test]
    async fn backoff_is_capped_and_old_failures_are_forgotten() {
        let s = scratch().await;
        let throttle = Throttle::new(s.durable.clone(), 1, Duration::from_secs(600));
        let mut t = 1_000_000_000;
        for _ in 0..10 {
            let admitted = admit(&throttle, "x", t).await.expect("after the backoff");
            assert!(admitted.locks.is_some_and(|b| b <= MAX_BACKOFF));
            t += MAX_BACKOFF.as_millis() as u64;
        }
        let throttle = Throttle::new(s.durable.clone(), 2, Duration::from_secs(60));
        assert!(admit(&throttle, "y", t).await.is_ok());
        // Long after, the earlier failure no longer counts.
        assert_eq!(
            admit(&throttle, "y", t + FORGET_AFTER_MS + 1000).await,
            Ok(Admitted { locks: None })
        );
    }

    #[tokio::test]
    async fn a_full_table_fails_closed_for_new_names() {
        let s = scratch().await;
        let mut throttle = Throttle::new(s.durable.clone(), 5, Duration::from_secs(60));
        throttle.max_accounts = 2;
        let t = 1_000_000_000;
        assert!(admit(&throttle, "a", t).await.is_ok());
        assert!(admit(&throttle, "b", t).await.is_ok());
        assert!(admit(&throttle, "c", t).await.is_err());
        // Known names still count, and stale entries make room.
        assert!(admit(&throttle, "a", t + 1000).await.is_ok());
        assert!(
            admit(&throttle, "c", t + FORGET_AFTER_MS + 10_000)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn zero_failures_disables_it() {
        let s = scratch().await;
        let throttle = Throttle::new(s.durable.clone(), 0, Duration::from_secs(60));
        for _ in 0..100 {
            assert!(admit(&throttle, "z", 0).await.is_ok());
        }
    }

    /// Two replicas (two throttles over one database), guessed at in
    /// parallel: together they admit the account's budget, not one each.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_count_one_account_together() {
        let s = scratch().await;
        let a = Arc::new(Throttle::new(
            s.durable.clone(),
            4,
            Duration::from_secs(600),
        ));
        let b = Arc::new(Throttle::new(
            s.durable.clone(),
            4,
            Duration::from_secs(600),
        ));
        let t = 1_000_000_000;
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let throttle = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { throttle.admit("ana", t).await })
            })
            .collect();
        let mut admitted = 0;
        for guess in guesses {
            if guess.await.expect("task").expect("db").is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 4, "the fourth admitted attempt locks the account");
    }
}
