//! Deadlines the socket enforces besides hyper's header timeout: a whole
//! request body must arrive within one deadline (a client dripping a byte
//! every few seconds would otherwise hold a connection and a task
//! forever), and a connection with no request in flight is closed
//! gracefully after the idle timeout. Idleness is judged by requests, not
//! socket bytes: an HTTP/2 peer that only pings is idle.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The error a body yields when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] once `limit` has passed
/// since the request head arrived. The timer is only armed when the body
/// is not already complete, so requests whose body came with the head pay
/// nothing for it.
pub(super) struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
    limit: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> DeadlineBody<B> {
    pub(super) fn new(inner: B, limit: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            deadline: Instant::now() + limit,
            limit,
            sleep: None,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a connection is in use: requests in flight (from the arrival of
/// a request head to the end of its response body) and when the last one
/// finished. Bytes on the socket are deliberately not counted: HTTP/2
/// keep-alive PINGs and their answers, WINDOW_UPDATEs and SETTINGS would
/// otherwise keep a connection that serves nothing open for ever.
#[derive(Clone)]
pub(super) struct Activity {
    shared: Arc<Shared>,
}

struct Shared {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last request finished, in milliseconds since `opened`.
    last_ms: AtomicU64,
    /// Signalled when the last request in flight finishes.
    quiet: Notify,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            shared: Arc::new(Shared {
                opened: Instant::now(),
                in_flight: AtomicUsize::new(0),
                last_ms: AtomicU64::new(0),
                quiet: Notify::new(),
            }),
        }
    }

    /// Marks a request as in flight until the returned guard is dropped.
    pub(super) fn begin(&self) -> InUse {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InUse(self.clone())
    }

    fn finish(&self) {
        let ms = self.shared.opened.elapsed().as_millis() as u64;
        self.shared.last_ms.store(ms, Ordering::SeqCst);
        if self.shared.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.quiet.notify_waiters();
        }
    }

    /// Resolves once no request has been in flight for `limit`.
    pub(super) async fn idle_for(&self, limit: Duration) {
        loop {
            let quiet = self.shared.quiet.notified();
            let mut quiet = std::pin::pin!(quiet);
            // Registered before the check, so a finish in between still wakes us.
            quiet.as_mut().enable();
            if self.shared.in_flight.load(Ordering::SeqCst) > 0 {
                quiet.await;
                continue;
            }
            let last = self.shared.opened
                + Duration::from_millis(self.shared.last_ms.load(Ordering::SeqCst));
            let due = last + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// One request in flight; finishing it is dropping it.
pub(super) struct InUse(Activity);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// A response body that keeps its request in flight until the body has
/// been sent (or the stream was reset and hyper dropped it).
pub(super) struct InUseBody<B> {
    inner: B,
    _in_use: InUse,
}

impl<B> InUseBody<B> {
    pub(super) fn new(inner: B, in_use: InUse) -> InUseBody<B> {
        InUseBody {
            inner,
            _in_use: in_use,
        }
    }
}

impl<B: Body + Unpin> Body for InUseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    // Real time, in tens of milliseconds: tokio's paused clock needs its
    // `test-util` feature, which would rebuild every tokio dependent for tests.
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[tokio::test]
    async fn a_complete_body_never_times_out() {
        let body = DeadlineBody::new(Full::new(Bytes::from_static(b"{}")), Duration::ZERO);
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"{}");
    }

    #[tokio::test]
    async fn a_stalled_body_fails_at_the_deadline() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let limit = Duration::from_millis(60);
        let body = DeadlineBody::new(StreamBody::new(Box::pin(stream)), limit);
        let started = Instant::now();
        let err = body.collect().await.expect_err("times out");
        assert!(err.is::<BodyTimeout>(), "{err}");
        assert!(started.elapsed() >= limit);
    }

    #[tokio::test]
    async fn idleness_counts_from_the_end_of_the_last_request() {
        let activity = Activity::new();
        let in_use = activity.begin();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(in_use);
        let finished = Instant::now();
        activity.idle_for(Duration::from_millis(60)).await;
        // From the finish, not from the opening 50 ms earlier.
        assert!(finished.elapsed() >= Duration::from_millis(55));
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_idle() {
        let activity = Activity::new();
        let in_use = activity.begin();
        let idle = activity.idle_for(Duration::from_millis(20));
        let mut idle = std::pin::pin!(idle);
        let waited = tokio::time::timeout(Duration::from_millis(150), idle.as_mut()).await;
        assert!(waited.is_err(), "idle while a request was in flight");
        drop(in_use);
        let finished = Instant::now();
        idle.await;
        assert!(finished.elapsed() >= Duration::from_millis(15));
    }

    #[tokio::test]
    async fn a_response_body_keeps_its_request_in_flight() {
        let activity = Activity::new();
        let body = InUseBody::new(Full::new(Bytes::from_static(b"ok")), activity.begin());
        assert_eq!(activity.shared.in_flight.load(Ordering::SeqCst), 1);
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"ok");
        assert_eq!(activity.shared.in_flight.load(Ordering::SeqCst), 0);
    }
}
