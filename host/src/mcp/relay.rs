//! A session's messages that land on a replica other than the one they are
//! for: a cancellation or an answer to a question of a call running
//! elsewhere, and a log level every replica serving the session must know.
//! This replica passes them on over the deployment's relay
//! ([`crate::state::relay`]) and acts on what the others pass on.

use std::sync::Arc;

use serde_json::Value;

use super::McpState;
use super::session::Session;
use crate::state::relay::Note;

impl McpState {
    /// Acts on the other replicas' notes until the returned task is
    /// aborted; `None` when there is no relay (one process, embedded state).
    pub async fn spawn_relay(self: &Arc<McpState>) -> Option<tokio::task::JoinHandle<()>> {
        let mut notes = self.relay.as_ref()?.subscribe().await;
        let state = self.clone();
        Some(tokio::spawn(async move {
            while let Some(note) = notes.recv().await {
                state.receive(note);
            }
        }))
    }

    fn receive(&self, note: Note) {
        let digest = match &note {
            Note::Cancel { session, .. }
            | Note::Answer { session, .. }
            | Note::LogLevel { session, .. } => session,
        };
        // Most notes are for a call another replica runs: nothing here.
        let Some(session) = self.sessions.by_digest(digest) else {
            return;
        };
        match note {
            Note::Cancel { request, .. } => {
                if session.cancel(&request) {
                    tracing::debug!(session = &*session.id, %request, "cancellation passed on by another replica");
                }
            }
            Note::Answer {
                request, outcome, ..
            } => {
                session.resolve(&request, outcome);
            }
            Note::LogLevel { rank, .. } => session.set_log_level(rank),
        }
    }

    /// A cancellation of a call this replica does not run.
    pub(super) async fn pass_on_cancel(&self, session: &Session, request: String) {
        self.pass_on(Note::Cancel {
            session: session.digest.to_string(),
            request,
        })
        .await;
    }

    /// An answer to a question this replica did not ask.
    pub(super) async fn pass_on_answer(
        &self,
        session: &Session,
        request: String,
        outcome: Result<Value, Value>,
    ) {
        self.pass_on(Note::Answer {
            session: session.digest.to_string(),
            request,
            outcome,
        })
        .await;
    }

    /// Sets the session's log level here, records it for replicas that
    /// take the session up later and tells those that hold it now.
    pub(super) async fn set_log_level(&self, session: &Session, rank: u8) {
        session.set_log_level(rank);
        if let Err(err) = self
            .durable
            .set_session_level(&session.digest, rank, session.expires)
            .await
        {
            tracing::warn!("recording a session's log level for the other replicas: {err}");
        }
        self.pass_on(Note::LogLevel {
            session: session.digest.to_string(),
            rank,
        })
        .await;
    }

    /// What a session taken up from another replica's id needs before its
    /// first request here: the log level its client set elsewhere.
    pub(super) async fn settle(&self, session: &Session) {
        if !session.take_adopted() {
            return;
        }
        match self.durable.session_level(&session.digest).await {
            Ok(Some(rank)) => session.set_log_level(rank),
            Ok(None) => {}
            Err(err) => tracing::warn!("reading a session's log level: {err}"),
        }
    }

    async fn pass_on(&self, note: Note) {
        let Some(relay) = &self.relay else {
            return;
        };
        if let Err(err) = relay.publish(note).await {
            tracing::warn!("passing a session's message to the other replicas: {err}");
        }
    }
}
