//! Tool-call rate limits as a pure data structure (GCRA via `governor`):
//! a budget per principal, optional per-principal-per-tool budgets, and
//! per-tool costs. Knows nothing about HTTP; the MCP layer asks it before
//! each call and turns a refusal into 429 with `Retry-After` and RateLimit
//! fields.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::config::{LimitsConfig, ToolLimit};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One named budget: its quota as configured and its keyed limiter.
struct Budget {
    name: String,
    quota_per_window: u32,
    window: Duration,
    limiter: Keyed,
}

/// All tool-call budgets. Lives for the process.
pub struct RateTable {
    calls: Option<Budget>,
    per_tool: BTreeMap<String, (Option<Budget>, u32)>,
    clock: DefaultClock,
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
    pub fn new(config: &LimitsConfig) -> RateTable {
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
        }
    }

    /// Charges one call of `tool` to `principal`; `Err` if any budget is
    /// spent. The tool's own budget is checked before the shared one, so a
    /// call refused by it costs nothing from the shared budget.
    pub fn check(&self, principal: &str, tool: &str) -> Result<Option<RateState>, Limited> {
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
}

impl AddressBudget {
    pub fn per_minute(per_minute: u32, burst: u32) -> AddressBudget {
        AddressBudget {
            budget: Budget::new("auth".into(), per_minute, burst, Duration::from_secs(60)),
            clock: DefaultClock::default(),
            checks: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Charges one request to `address`.
    pub fn check(&self, address: &str) -> Result<(), Limited> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
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
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(per_window_nz);
        let quota = Quota::with_period(window / per_window)?.allow_burst(burst);
        let limiter = RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>();
        Some(Budget {
            name,
            quota_per_window: per_window,
            window,
            limiter,
        })
    }

    fn charge(&self, key: &str, cost: u32, clock: &DefaultClock) -> Result<RateState, Limited> {
        let key = key.to_string();
        let cost_nz = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        let limited = |retry_after: Duration| Limited {
            policy: self.name.clone(),
            quota: self.quota_per_window,
            window_secs: self.window.as_secs(),
            retry_after,
        };
        match self.limiter.check_key_n(&key, cost_nz) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                let per_call = self.window.as_secs_f64() / f64::from(self.quota_per_window);
                let missing = self.quota_per_window.saturating_sub(remaining);
                Ok(RateState {
                    policy: self.name.clone(),
                    quota: self.quota_per_window,
                    window_secs: self.window.as_secs(),
                    remaining,
                    reset_secs: (per_call * f64::from(missing)).ceil() as u64,
                })
            }
            Ok(Err(not_until)) => Err(limited(not_until.wait_time_from(clock.now()))),
            // The cost exceeds the whole burst: it can never pass.
            Err(_) => Err(limited(self.window)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;

    fn table(toml_text: &str) -> RateTable {
        let config: LimitsConfig = toml::from_str(toml_text).expect("limits config");
        RateTable::new(&config)
    }

    #[test]
    fn address_budgets_are_per_address() {
        let budget = AddressBudget::per_minute(60, 2);
        assert!(budget.check("192.0.2.1").is_ok());
        assert!(budget.check("192.0.2.1").is_ok());
        let refused = budget.check("192.0.2.1").expect_err("burst spent");
        assert_eq!(refused.policy, "auth");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert!(
            budget.check("192.0.2.2").is_ok(),
            "another address has its own"
        );
        let off = AddressBudget::per_minute(0, 0);
        assert!((0..100).all(|_| off.check("192.0.2.1").is_ok()));
    }

    #[test]
    fn budgets_are_per_principal_and_per_tool() {
        let rates = table(
            "tool_calls_per_hour = 3\ntool_calls_burst = 3\n[tools.expensive]\ncost = 2\n[tools.rare]\ncalls_per_hour = 1\n",
        );
        let state = rates
            .check("alice", "echo")
            .expect("first call")
            .expect("budget");
        assert_eq!(
            (state.quota, state.window_secs, state.remaining),
            (3, 3600, 2)
        );
        rates.check("alice", "expensive").expect("costs two");
        let refused = rates.check("alice", "echo").expect_err("budget spent");
        assert_eq!(refused.policy, "calls");
        assert!(
            refused.retry_after > Duration::from_secs(1000),
            "{refused:?}"
        );
        rates.check("bob", "echo").expect("bob has his own budget");
        rates.check("bob", "rare").expect("one rare call");
        let refused = rates.check("bob", "rare").expect_err("rare budget spent");
        assert_eq!(refused.policy, "tool:rare");
        rates
            .check("bob", "echo")
            .expect("the refused rare call cost nothing from the shared budget");
    }

    #[test]
    fn zero_disables() {
        let rates = table("tool_calls_per_hour = 0\n");
        for _ in 0..1000 {
            assert_eq!(rates.check("alice", "echo"), Ok(None));
        }
    }
}
