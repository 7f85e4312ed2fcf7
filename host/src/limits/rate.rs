//! Tool-call rate limits (GCRA): a budget per principal, optional
//! per-principal-per-tool budgets, and per-tool costs. Kept in this process
//! (`governor`), or, with `[cluster] redis_url`, in Redis so every replica
//! spends one budget. Knows nothing about HTTP; the MCP layer asks it
//! before each call and turns a refusal into 429 with `Retry-After` and
//! RateLimit fields.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;

use crate::config::{LimitsConfig, OnRedisDown, ToolLimit};
use crate::state::budgets::{Charge, SharedBudgets, Spent};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One named budget: its quota as configured and its keyed limiter (used
/// alone, or when the shared budgets are down and the operator chose
/// `local`).
struct Budget {
    name: String,
    quota_per_window: u32,
    burst: u32,
    window: Duration,
    limiter: Keyed,
}

/// Budgets shared by every replica, and what to do when they cannot be
/// reached. Cheap to clone.
#[derive(Clone)]
pub struct RedisBudgets {
    budgets: Arc<SharedBudgets>,
    on_down: OnRedisDown,
    /// Checks made while Redis was unreachable.
    fallbacks: Counter,
    /// Unix seconds of the last warning logged about it.
    warned: Arc<AtomicU64>,
    /// Unix milliseconds until which Redis is taken as down without asking:
    /// while it is unreachable, every call would otherwise wait out a
    /// command timeout before falling back.
    down_until_ms: Arc<AtomicU64>,
}

/// How long a failed Redis check keeps the next ones from trying again.
const RETRY_REDIS_AFTER: Duration = Duration::from_secs(1);

impl RedisBudgets {
    pub fn new(budgets: Arc<SharedBudgets>, on_down: OnRedisDown) -> RedisBudgets {
        RedisBudgets {
            budgets,
            on_down,
            fallbacks: Counter::default(),
            warned: Arc::new(AtomicU64::new(0)),
            down_until_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Checks made while Redis was unreachable (answered locally or
    /// refused, as configured), for the metrics.
    pub fn fallbacks(&self) -> &Counter {
        &self.fallbacks
    }

    pub fn budgets(&self) -> &Arc<SharedBudgets> {
        &self.budgets
    }

    /// Spends `charges` in Redis. `None` when Redis failed and the checks
    /// fall back to this process's budgets.
    async fn spend(
        &self,
        charges: &[(&Budget, u32)],
        key: &str,
    ) -> Option<Result<Vec<u32>, Limited>> {
        let request: Vec<Charge<'_>> = charges
            .iter()
            .map(|(budget, cost)| Charge {
                policy: &budget.name,
                key,
                period: budget.window / budget.quota_per_window.max(1),
                burst: budget.burst,
                cost: *cost,
            })
            .collect();
        let now_ms = crate::state::unix_now_ms();
        let outcome = if now_ms < self.down_until_ms.load(Ordering::Relaxed) {
            Err(crate::state::StateError::Redis(
                "unreachable a moment ago; trying again shortly".into(),
            ))
        } else {
            let outcome = self.budgets.charge(&request).await;
            if outcome.is_err() {
                self.down_until_ms.store(
                    now_ms + RETRY_REDIS_AFTER.as_millis() as u64,
                    Ordering::Relaxed,
                );
            }
            outcome
        };
        match outcome {
            Ok(Spent::Allowed(left)) => Some(Ok(left)),
            Ok(Spent::Refused { index, retry_after }) => {
                let budget = charges.get(index).map(|(b, _)| *b)?;
                Some(Err(budget.limited(retry_after.unwrap_or(budget.window))))
            }
            Err(err) => {
                self.fallbacks.inc();
                self.warn(&err);
                match self.on_down {
                    OnRedisDown::Local => None,
                    OnRedisDown::Deny => Some(Err(Limited {
                        policy: "shared-budgets-unavailable".into(),
                        quota: 0,
                        window_secs: 0,
                        retry_after: Duration::from_secs(5),
                    })),
                }
            }
        }
    }

    /// At most one warning every ten seconds: an outage must be visible,
    /// not flood the log.
    fn warn(&self, err: &crate::state::StateError) {
        let now = crate::state::unix_now();
        let last = self.warned.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let action = match self.on_down {
                OnRedisDown::Local => "budgets are per replica until it is back",
                OnRedisDown::Deny => "calls are refused until it is back",
            };
            tracing::warn!("shared rate budgets unreachable ({err}); {action}");
        }
    }
}

/// All tool-call budgets. Lives until the limits are reconfigured.
pub struct RateTable {
    calls: Option<Budget>,
    per_tool: BTreeMap<String, (Option<Budget>, u32)>,
    clock: DefaultClock,
    shared: Option<RedisBudgets>,
}

/// A budget's state after a permitted call, for the `RateLimit` fields.
#[derive(Debug, Clone, PartialEq)]
pub struct RateState {
    pub policy: String,
    pub quota: u32,
    pub window_secs: u64,
    pub remaining: u32,
    /// Seconds until the budget is full again.
    pub reset_secs: u64,
}

/// A refused call.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub policy: String,
    pub quota: u32,
    pub window_secs: u64,
    pub retry_after: Duration,
}

impl RateTable {
    pub fn new(config: &LimitsConfig, shared: Option<RedisBudgets>) -> RateTable {
        let hour = Duration::from_secs(3600);
        RateTable {
            calls: Budget::new(
                "calls".into(),
                config.tool_calls_per_hour,
                config.tool_calls_burst,
                hour,
            ),
            per_tool: config
                .tools
                .iter()
                .map(|(tool, limit): (&String, &ToolLimit)| {
                    let budget = limit.calls_per_hour.and_then(|q| {
                        Budget::new(format!("tool:{tool}"), q, limit.burst.unwrap_or(q), hour)
                    });
                    (tool.clone(), (budget, limit.cost.max(1)))
                })
                .collect(),
            clock: DefaultClock::default(),
            shared,
        }
    }

    /// Charges one call of `tool` to `principal`; `Err` if any budget is
    /// spent. The tool's own budget is checked before the shared one, so a
    /// call refused by it costs nothing from the shared budget.
    pub async fn check(&self, principal: &str, tool: &str) -> Result<Option<RateState>, Limited> {
        if let Some(shared) = &self.shared {
            let (tool_budget, cost) = match self.per_tool.get(tool) {
                Some((budget, cost)) => (budget.as_ref(), *cost),
                None => (None, 1),
            };
            let charges: Vec<(&Budget, u32)> = tool_budget
                .map(|b| (b, 1))
                .into_iter()
                .chain(self.calls.as_ref().map(|b| (b, cost)))
                .collect();
            if charges.is_empty() {
                return Ok(None);
            }
            if let Some(spent) = shared.spend(&charges, principal).await {
                let left = spent?;
                return Ok(self
                    .calls
                    .as_ref()
                    .map(|calls| calls.state(left.last().copied().unwrap_or(0))));
            }
        }
        self.check_local(principal, tool)
    }

    fn check_local(&self, principal: &str, tool: &str) -> Result<Option<RateState>, Limited> {
        let (tool_budget, cost) = match self.per_tool.get(tool) {
            Some((budget, cost)) => (budget.as_ref(), *cost),
            None => (None, 1),
        };
        if let Some(budget) = tool_budget {
            budget.charge(principal, 1, &self.clock)?;
        }
        match &self.calls {
            Some(budget) => budget.charge(principal, cost, &self.clock).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets principals whose budgets are full again, bounding memory.
    /// Called periodically by the server.
    pub fn retain_recent(&self) {
        if let Some(budget) = &self.calls {
            budget.limiter.retain_recent();
        }
        for budget in self.per_tool.values().filter_map(|(b, _)| b.as_ref()) {
            budget.limiter.retain_recent();
        }
    }
}

/// A per-address budget for the unauthenticated endpoints (`/token`,
/// `/register`, `/authorize`, `/revoke`), where no principal exists yet.
pub struct AddressBudget {
    budget: Option<Budget>,
    clock: DefaultClock,
    /// Checks since the last sweep of full budgets.
    checks: std::sync::atomic::AtomicU32,
    shared: Option<RedisBudgets>,
}

impl AddressBudget {
    pub fn per_minute(per_minute: u32, burst: u32, shared: Option<RedisBudgets>) -> AddressBudget {
        AddressBudget {
            budget: Budget::new("auth".into(), per_minute, burst, Duration::from_secs(60)),
            clock: DefaultClock::default(),
            checks: std::sync::atomic::AtomicU32::new(0),
            shared,
        }
    }

    /// Charges one request to `address`.
    pub async fn check(&self, address: &str) -> Result<(), Limited> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if let Some(shared) = &self.shared
            && let Some(spent) = shared.spend(&[(budget, 1)], address).await
        {
            return spent.map(|_| ());
        }
        // Bound memory without a timer: forget full budgets now and then.
        if self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 4096
            == 4095
        {
            budget.limiter.retain_recent();
        }
        budget.charge(address, 1, &self.clock).map(|_| ())
    }
}

impl Budget {
    fn new(name: String, per_window: u32, burst: u32, window: Duration) -> Option<Budget> {
        let per_window_nz = NonZeroU32::new(per_window)?;
        let burst_nz = NonZeroU32::new(burst.max(1)).unwrap_or(per_window_nz);
        let quota = Quota::with_period(window / per_window)?.allow_burst(burst_nz);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Some(Budget {
            name,
            quota_per_window: per_window,
            burst: burst_nz.get(),
            window,
            limiter,
        })
    }

    fn limited(&self, retry_after: Duration) -> Limited {
        Limited {
            policy: self.name.clone(),
            quota: self.quota_per_window,
            window_secs: self.window.as_secs(),
            retry_after,
        }
    }

    /// The `RateLimit` facts with `remaining` units left.
    fn state(&self, remaining: u32) -> RateState {
        let per_call = self.window.as_secs_f64() / f64::from(self.quota_per_window);
        let missing = self.quota_per_window.saturating_sub(remaining);
        RateState {
            policy: self.name.clone(),
            quota: self.quota_per_window,
            window_secs: self.window.as_secs(),
            remaining,
            reset_secs: (per_call * f64::from(missing)).ceil() as u64,
        }
    }

    fn charge(&self, key: &str, cost: u32, clock: &DefaultClock) -> Result<RateState, Limited> {
        let key = key.to_string();
        let cost_nz = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(&key, cost_nz) {
            Ok(Ok(snapshot)) => Ok(self.state(snapshot.remaining_burst_capacity())),
            Ok(Err(not_until)) => Err(self.limited(not_until.wait_time_from(clock.now()))),
            // The cost exceeds the whole burst: it can never pass.
            Err(_) => Err(self.limited(self.window)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;

    fn table(toml_text: &str) -> RateTable {
        let config: LimitsConfig = toml::from_str(toml_text).expect("limits config");
        RateTable::new(&config, None)
    }

    #[tokio::test]
    async fn address_budgets_are_per_address() {
        let budget = AddressBudget::per_minute(60, 2, None);
        assert!(budget.check("192.0.2.1").await.is_ok());
        assert!(budget.check("192.0.2.1").await.is_ok());
        let refused = budget.check("192.0.2.1").await.expect_err("burst spent");
        assert_eq!(refused.policy, "auth");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert!(
            budget.check("192.0.2.2").await.is_ok(),
            "another address has its own"
        );
        let off = AddressBudget::per_minute(0, 0, None);
        for _ in 0..100 {
            assert!(off.check("192.0.2.1").await.is_ok());
        }
    }

    #[tokio::test]
    async fn budgets_are_per_principal_and_per_tool() {
        let rates = table(
            "tool_calls_per_hour = 3\ntool_calls_burst = 3\n[tools.expensive]\ncost = 2\n[tools.rare]\ncalls_per_hour = 1\n",
        );
        let state = rates
            .check("alice", "echo")
            .await
            .expect("first call")
            .expect("budget");
        assert_eq!(
            (state.quota, state.window_secs, state.remaining),
            (3, 3600, 2)
        );
        rates.check("alice", "expensive").await.expect("costs two");
        let refused = rates
            .check("alice", "echo")
            .await
            .expect_err("budget spent");
        assert_eq!(refused.policy, "calls");
        assert!(
            refused.retry_after > Duration::from_secs(1000),
            "{refused:?}"
        );
        rates
            .check("bob", "echo")
            .await
            .expect("bob has his own budget");
        rates.check("bob", "rare").await.expect("one rare call");
        let refused = rates
            .check("bob", "rare")
            .await
            .expect_err("rare budget spent");
        assert_eq!(refused.policy, "tool:rare");
        rates
            .check("bob", "echo")
            .await
            .expect("the refused rare call cost nothing from the shared budget");
    }

    #[tokio::test]
    async fn zero_disables() {
        let rates = table("tool_calls_per_hour = 0\n");
        for _ in 0..1000 {
            assert_eq!(rates.check("alice", "echo").await, Ok(None));
        }
    }
}
