//! A connection being answered is held (`crate::admission`): never shed for a newcomer while a
//! request is answered, its body included (a live stream's too). Each request carries its
//! connection's ticket as an `Arc<Ticket>` extension, put there by `serve`. A route that keeps
//! the connection past its response (a WebSocket) keeps a clone of that ticket, and a `Hold`,
//! for as long.

use std::sync::Arc;

use axum::response::Response;

use crate::admission::{Hold, Ticket};

/// Holds the connection while a request is answered, its body (a live stream's too) included:
/// such a connection is never shed for a newcomer.
pub(super) async fn held(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let hold = request.extensions().get::<Arc<Ticket>>().map(|ticket| {
        ticket.spoke();
        ticket.hold()
    });
    let response = next.run(request).await;
    match hold {
        Some(hold) => response.map(|body| axum::body::Body::new(Held { body, _hold: hold })),
        None => response,
    }
}

/// A response body that holds its connection until it is done or dropped.
struct Held {
    body: axum::body::Body,
    _hold: Hold,
}

impl axum::body::HttpBody for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
