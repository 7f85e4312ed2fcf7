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

use std::collections::HashMap;
use std::time::Duration;

/// Longest backoff, however many failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// An account with no failed attempt for this long starts afresh.
const FORGET_AFTER_MS: u64 = 3600 * 1000;
const MAX_ACCOUNTS: usize = 10_000;
/// Names longer than any valid user name are kept this long as keys.
const MAX_KEY: usize = 128;

pub(super) struct Throttle {
    failures: u32,
    backoff: Duration,
    accounts: HashMap<String, Account>,
    max_accounts: usize,
}

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
    pub(super) fn new(failures: u32, backoff: Duration) -> Throttle {
        Throttle {
            failures,
            backoff,
            accounts: HashMap::new(),
            max_accounts: MAX_ACCOUNTS,
        }
    }

    /// Whether `name` may try a password now; counts the attempt.
    pub(super) fn admit(&mut self, name: &str, now_ms: u64) -> Result<Admitted, Refused> {
        if self.failures == 0 {
            return Ok(Admitted { locks: None });
        }
        let key = key(name);
        if !self.accounts.contains_key(&key) && self.accounts.len() >= self.max_accounts {
            self.prune(now_ms);
            if self.accounts.len() >= self.max_accounts {
                return Err(Refused {
                    retry_after: Duration::from_secs(60),
                });
            }
        }
        let account = self.accounts.entry(key).or_insert(Account {
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
            return Ok(Admitted { locks: None });
        }
        let doublings = (account.attempts - self.failures).min(16);
        let backoff = self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        account.locked_until_ms = now_ms.saturating_add(backoff.as_millis() as u64);
        Ok(Admitted {
            locks: Some(backoff),
        })
    }

    /// The password was right: the account starts afresh.
    pub(super) fn succeeded(&mut self, name: &str) {
        self.accounts.remove(&key(name));
    }

    fn prune(&mut self, now_ms: u64) {
        self.accounts.retain(|_, a| {
            a.locked_until_ms > now_ms
                || now_ms.saturating_sub(a.last_attempt_ms) <= FORGET_AFTER_MS
        });
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

    const MIN: u64 = 60_000;

    #[test]
    fn an_account_backs_off_after_its_failures_and_doubles() {
        let mut throttle = Throttle::new(3, Duration::from_secs(60));
        let t = 1_000_000;
        assert_eq!(throttle.admit("alice", t), Ok(Admitted { locks: None }));
        assert_eq!(throttle.admit("alice", t), Ok(Admitted { locks: None }));
        assert_eq!(
            throttle.admit("alice", t),
            Ok(Admitted {
                locks: Some(Duration::from_secs(60))
            })
        );
        // Locked: even the right password is not tried.
        assert_eq!(
            throttle.admit("alice", t + 1000),
            Err(Refused {
                retry_after: Duration::from_secs(59)
            })
        );
        // Another account is not affected.
        assert!(throttle.admit("bob", t).is_ok());
        // After the backoff one more try; failing it doubles the wait.
        assert_eq!(
            throttle.admit("alice", t + MIN),
            Ok(Admitted {
                locks: Some(Duration::from_secs(120))
            })
        );
        assert!(throttle.admit("alice", t + 2 * MIN).is_err());
        // A success clears the account.
        throttle.succeeded("alice");
        assert_eq!(
            throttle.admit("alice", t + 2 * MIN),
            Ok(Admitted { locks: None })
        );
    }

    #[test]
    fn backoff_is_capped_and_old_failures_are_forgotten() {
        let mut throttle = Throttle::new(1, Duration::from_secs(600));
        let mut t = 0;
        for _ in 0..10 {
            let admitted = throttle.admit("x", t).expect("after the backoff");
            assert!(admitted.locks.is_some_and(|b| b <= MAX_BACKOFF));
            t += MAX_BACKOFF.as_millis() as u64;
        }
        let mut throttle = Throttle::new(2, Duration::from_secs(60));
        assert!(throttle.admit("y", 0).is_ok());
        // Long after, the earlier failure no longer counts.
        assert_eq!(
            throttle.admit("y", FORGET_AFTER_MS + 1),
            Ok(Admitted { locks: None })
        );
    }

    #[test]
    fn a_full_table_fails_closed_for_new_names() {
        let mut throttle = Throttle::new(5, Duration::from_secs(60));
        throttle.max_accounts = 2;
        assert!(throttle.admit("a", 0).is_ok());
        assert!(throttle.admit("b", 0).is_ok());
        assert!(throttle.admit("c", 0).is_err());
        // Known names still count, and stale entries make room.
        assert!(throttle.admit("a", 1).is_ok());
        assert!(throttle.admit("c", FORGET_AFTER_MS + 10).is_ok());
    }

    #[test]
    fn zero_failures_disables_it() {
        let mut throttle = Throttle::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            assert!(throttle.admit("z", 0).is_ok());
        }
    }
}
