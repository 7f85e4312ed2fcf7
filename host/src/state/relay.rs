//! Notes between replicas about the sessions they share: a client's answer
//! to a question, a cancellation or a log level can reach a replica other
//! than the one running the call it is about (a balancer picks replicas per
//! request), and the replica that received it passes it on here.
//!
//! Over Redis pub/sub when the cluster has Redis, else over PostgreSQL's
//! `LISTEN`/`NOTIFY`: one channel for the deployment, every replica
//! subscribed, each note tagged with its sender so a replica skips its own.
//! Notes are rare (people answer questions and press stop), so a broadcast
//! costs little and needs no routing table. Delivery is at most once: a
//! note sent while a replica is reconnecting is lost, as a dropped
//! connection would lose it; the call then ends by its deadline.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Durable, StateError};

/// Redis channel and PostgreSQL `NOTIFY` channel of the deployment.
const REDIS_CHANNEL: &str = "toolhost:relay";
const POSTGRES_CHANNEL: &str = "toolhost_relay";

/// How long publishing may take before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);
/// Between attempts to subscribe again after losing the subscription.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);
/// PostgreSQL refuses `NOTIFY` payloads of 8000 bytes or more.
const POSTGRES_MAX_PAYLOAD: usize = 7_900;

/// What one replica tells the others about a session, named by the digest
/// of its id (ids are bearer secrets of a sort; digests are not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// The client cancelled its request `request` (the JSON of its id).
    Cancel { session: String, request: String },
    /// The client answered the server's request `request`: a result or an
    /// error object.
    Answer {
        session: String,
        request: String,
        outcome: Result<Value, Value>,
    },
    /// The client asked for plugin logs from this severity rank on.
    LogLevel { session: String, rank: u8 },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    note: Note,
}

enum Backend {
    Redis {
        client: redis::Client,
        publisher: ConnectionManager,
    },
    Postgres {
        url: String,
        durable: Arc<Durable>,
    },
}

/// A replica's end of the deployment's relay.
pub struct Relay {
    backend: Backend,
    /// This process, so it skips what it sent itself.
    origin: String,
}

impl Relay {
    /// Over Redis at `url`; connections are made on first use.
    pub fn redis(url: &str) -> Result<Relay, StateError> {
        let client = redis::Client::open(url).map_err(|e| StateError::Redis(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(PUBLISH_TIMEOUT * 2))
            .set_response_timeout(Some(PUBLISH_TIMEOUT))
            .set_number_of_retries(1);
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| StateError::Redis(e.to_string()))?;
        Ok(Relay {
            backend: Backend::Redis { client, publisher },
            origin: origin(),
        })
    }

    /// Over the PostgreSQL database `durable` holds (at `url`), for a
    /// cluster without Redis.
    pub fn postgres(url: &str, durable: Arc<Durable>) -> Relay {
        Relay {
            backend: Backend::Postgres {
                url: url.to_string(),
                durable,
            },
            origin: origin(),
        }
    }

    /// Tells every other replica.
    pub async fn publish(&self, note: Note) -> Result<(), StateError> {
        let payload = serde_json::to_string(&Envelope {
            from: self.origin.clone(),
            note,
        })
        .map_err(|e| StateError::Corrupt(e.to_string()))?;
        match &self.backend {
            Backend::Redis { publisher, .. } => {
                let mut connection = publisher.clone();
                let sent: Result<i64, _> = tokio::time::timeout(
                    PUBLISH_TIMEOUT,
                    redis::cmd("PUBLISH")
                        .arg(REDIS_CHANNEL)
                        .arg(&payload)
                        .query_async(&mut connection),
                )
                .await
                .map_err(|_| StateError::Redis(format!("no answer within {PUBLISH_TIMEOUT:?}")))?;
                sent.map(drop).map_err(|e| StateError::Redis(e.to_string()))
            }
            Backend::Postgres { durable, .. } => {
                if payload.len() > POSTGRES_MAX_PAYLOAD {
                    return Err(StateError::Corrupt(format!(
                        "a note of {} bytes is over PostgreSQL's NOTIFY limit",
                        payload.len()
                    )));
                }
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(POSTGRES_CHANNEL)
                    .bind(payload)
                    .execute(&durable.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Everything the other replicas publish from now on, for as long as
    /// the receiver is kept; the subscription is remade after a loss. The
    /// first is made before this returns (or has failed, within a few
    /// seconds), so a replica serves no session before it hears the others.
    pub async fn subscribe(self: &Arc<Self>) -> mpsc::Receiver<Note> {
        let (tx, rx) = mpsc::channel(256);
        let mut next = Some(self.open().await);
        let relay = self.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let opened = match next.take() {
                    Some(opened) => opened,
                    None => relay.open().await,
                };
                let outcome = match opened {
                    Ok(subscription) => relay.follow(subscription, &tx).await,
                    Err(reason) => Follow::Lost(reason),
                };
                match outcome {
                    Follow::ReceiverGone => return,
                    Follow::Lost(reason) => {
                        // One line per outage, not one per second of it.
                        if failures == 0 {
                            tracing::warn!(
                                "relay between replicas lost ({reason}); resubscribing; \
                                 answers and cancellations sent to other replicas meanwhile are lost"
                            );
                        }
                        failures += 1;
                    }
                    Follow::Resumed => failures = 0,
                }
                tokio::time::sleep(RESUBSCRIBE_DELAY).await;
            }
        });
        rx
    }

    async fn open(&self) -> Result<Subscription, String> {
        let opened = tokio::time::timeout(PUBLISH_TIMEOUT * 4, async {
            match &self.backend {
                Backend::Redis { client, .. } => {
                    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                    pubsub
                        .subscribe(REDIS_CHANNEL)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Subscription::Redis(pubsub))
                }
                Backend::Postgres { url, .. } => {
                    let mut listener = sqlx::postgres::PgListener::connect(url)
                        .await
                        .map_err(|e| e.to_string())?;
                    listener
                        .listen(POSTGRES_CHANNEL)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Subscription::Postgres(Box::new(listener)))
                }
            }
        })
        .await;
        opened.unwrap_or_else(|_| Err("no answer".into()))
    }

    /// Hands on notes until the subscription ends.
    async fn follow(&self, subscription: Subscription, tx: &mpsc::Sender<Note>) -> Follow {
        match subscription {
            Subscription::Redis(mut pubsub) => {
                let mut messages = pubsub.on_message();
                let mut delivered = false;
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    if !self.deliver(&payload, tx).await {
                        return Follow::ReceiverGone;
                    }
                    delivered = true;
                }
                if delivered {
                    Follow::Resumed
                } else {
                    Follow::Lost("the subscription ended".into())
                }
            }
            Subscription::Postgres(mut listener) => loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if !self.deliver(notification.payload(), tx).await {
                            return Follow::ReceiverGone;
                        }
                    }
                    // Remade by the listener itself on the next call.
                    Ok(None) => {
                        tracing::warn!("relay connection to PostgreSQL lost; reconnecting");
                    }
                    Err(err) => return Follow::Lost(err.to_string()),
                }
            },
        }
    }

    /// Hands on another replica's note; `false` once nobody listens.
    async fn deliver(&self, payload: &str, tx: &mpsc::Sender<Note>) -> bool {
        match serde_json::from_str::<Envelope>(payload) {
            Ok(envelope) if envelope.from == self.origin => true,
            Ok(envelope) => tx.send(envelope.note).await.is_ok(),
            Err(err) => {
                tracing::warn!("a relay note that is not ours was skipped: {err}");
                true
            }
        }
    }
}

enum Subscription {
    Redis(redis::aio::PubSub),
    Postgres(Box<sqlx::postgres::PgListener>),
}

enum Follow {
    /// The subscription ended after working; try again at once.
    Resumed,
    /// It could not be made, or ended before anything arrived.
    Lost(String),
    /// Nobody reads the notes any more.
    ReceiverGone,
}

fn origin() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Only self-delivery depends on it; a clock is unique enough.
        return format!("{:x}", super::unix_now_ms());
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_their_shape_on_the_wire() {
        let note = Note::Answer {
            session: "ab".into(),
            request: "\"toolhost-1\"".into(),
            outcome: Err(serde_json::json!({"code": -1})),
        };
        let wire = serde_json::to_string(&Envelope {
            from: "me".into(),
            note: note.clone(),
        })
        .expect("encode");
        let back: Envelope = serde_json::from_str(&wire).expect("decode");
        assert_eq!(back.note, note);
        assert!(wire.contains("\"kind\":\"answer\""), "{wire}");
    }

    #[tokio::test]
    async fn a_replica_skips_its_own_notes() {
        let relay = Relay::redis("redis://127.0.0.1:1").expect("lazy");
        let (tx, mut rx) = mpsc::channel(4);
        let own = serde_json::to_string(&Envelope {
            from: relay.origin.clone(),
            note: Note::LogLevel {
                session: "s".into(),
                rank: 1,
            },
        })
        .expect("encode");
        let other = own.replace(&relay.origin, "someone-else");
        assert!(relay.deliver(&own, &tx).await);
        assert!(relay.deliver("not json", &tx).await);
        assert!(relay.deliver(&other, &tx).await);
        drop(tx);
        assert_eq!(
            rx.recv().await,
            Some(Note::LogLevel {
                session: "s".into(),
                rank: 1
            })
        );
        assert_eq!(rx.recv().await, None);
    }
}
