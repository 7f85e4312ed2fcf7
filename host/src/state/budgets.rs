//! Rate budgets every replica shares, in Redis: the same GCRA as the
//! per-process limiter (`governor`), evaluated by one Lua script per check
//! so a call costs one round trip and concurrent replicas cannot both spend
//! the last unit. The clock is Redis's own (`TIME`), so replicas' clock
//! skew does not move anyone's budget.
//!
//! Never blocking the request path on a lost Redis: the connection is made
//! lazily and remade in the background, and every command is bounded by a
//! short timeout; the caller decides what an error means (deny, or fall
//! back to its local budgets).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StateError;

/// How long one check may take before it counts as Redis being down:
/// long enough for a busy machine's scheduling delays, short enough that a
/// hung Redis costs a call little.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// One budget a check spends: `cost` units of a budget that refills one
/// unit per `period` and holds at most `burst`.
#[derive(Debug, Clone)]
pub struct Charge<'a> {
    /// The budget's name and its owner (a principal, an address range).
    pub policy: &'a str,
    pub key: &'a str,
    pub period: Duration,
    pub burst: u32,
    pub cost: u32,
}

/// What a check found. All budgets are spent together or none is.
#[derive(Debug, PartialEq)]
pub enum Spent {
    /// Units left in each budget, in the order charged.
    Allowed(Vec<u32>),
    /// The budget at this index is spent; it has room again after
    /// `retry_after` (`None`: the cost exceeds the whole burst, never).
    Refused {
        index: usize,
        retry_after: Option<Duration>,
    },
}

/// GCRA over several budgets at once. KEYS: one per budget; ARGV: period
/// (µs), burst and cost per budget. Returns {1, 0, 0, remaining…} or
/// {0, index (1-based), retry µs or -1}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local left = {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tau = period * burst
  local increment = period * cost
  if increment > tau then
    return {0, i, -1}
  end
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then
    tat = now
  end
  local new_tat = tat + increment
  local allow_at = new_tat - tau
  if allow_at > now then
    return {0, i, allow_at - now}
  end
  tats[i] = new_tat
  left[i] = math.floor((tau - (new_tat - now)) / period)
end
local out = {1, 0, 0}
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  out[#out + 1] = left[i]
end
return out
";

/// The shared budgets of a deployment.
pub struct SharedBudgets {
    connection: ConnectionManager,
    script: redis::Script,
}

impl SharedBudgets {
    /// Prepares the connection to `url`; it is made on first use (and
    /// remade after a loss), so a Redis that is down at start delays
    /// nothing.
    pub fn new(url: &str) -> Result<SharedBudgets, StateError> {
        let client = redis::Client::open(url).map_err(|e| StateError::Redis(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT * 2))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StateError::Redis(e.to_string()))?;
        Ok(SharedBudgets {
            connection,
            script: redis::Script::new(GCRA),
        })
    }

    /// Spends every one of `charges`, or none when any is spent already.
    pub async fn charge(&self, charges: &[Charge<'_>]) -> Result<Spent, StateError> {
        let mut invocation = self.script.prepare_invoke();
        for charge in charges {
            invocation
                .key(format!("toolhost:budget:{}:{}", charge.policy, charge.key))
                .arg(
                    u64::try_from(charge.period.as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .arg(charge.burst.max(1))
                .arg(charge.cost);
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> =
            tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| StateError::Redis(format!("no answer within {COMMAND_TIMEOUT:?}")))?
                .map_err(|e| StateError::Redis(e.to_string()))?;
        match reply.as_slice() {
            [1, _, _, left @ ..] if left.len() == charges.len() => Ok(Spent::Allowed(
                left.iter()
                    .map(|&n| u32::try_from(n).unwrap_or(0))
                    .collect(),
            )),
            [0, index, retry] => Ok(Spent::Refused {
                index: usize::try_from(*index).unwrap_or(1).saturating_sub(1),
                retry_after: u64::try_from(*retry).ok().map(Duration::from_micros),
            }),
            other => Err(StateError::Redis(format!(
                "unexpected budget reply {other:?}"
            ))),
        }
    }

    /// Connects and loads the script now, so the first call does not pay
    /// for either (a start under load could otherwise see its first checks
    /// time out). A failure here only means the first check connects.
    pub async fn warm(&self) {
        let mut connection = self.connection.clone();
        let loaded: Result<Result<String, _>, _> =
            tokio::time::timeout(COMMAND_TIMEOUT * 4, self.script.load_async(&mut connection))
                .await;
        if !matches!(loaded, Ok(Ok(_))) {
            tracing::warn!("Redis did not answer at start; rate checks will connect on first use");
        }
    }

    /// Whether Redis answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StateError> {
        let mut connection = self.connection.clone();
        let pong: String = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async(&mut connection),
        )
        .await
        .map_err(|_| StateError::Redis(format!("no answer within {COMMAND_TIMEOUT:?}")))?
        .map_err(|e| StateError::Redis(e.to_string()))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StateError::Redis(format!("PING answered {pong:?}")))
        }
    }
}
