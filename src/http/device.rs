//! `/device`, the page that makes a browser a device, and `/api/v1/device`, its WebSocket.
//! The rules of a socket are `browser::session`'s; here is only its I/O: frames in and out,
//! the pieces the page's sweeper hands out, its counters once a second, and the close.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use crate::browser::frame::{HostFrame, MAX_FRAME};
use crate::browser::session::{Action, Session, SessionError};
use crate::browser::{BrowserHost, Link};

/// Time for a page to say hello after it connects: its shape search takes a few seconds
/// (`gpu::shape::BUDGET`), and a software adapter's first pipeline longer.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a page is told what it was credited with.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The upgrade: refused unless this run takes browser devices (or benchmarks them), and past
/// `--browser-devices` pages at once.
pub async fn upgrade(host: Option<Arc<BrowserHost>>, ws: WebSocketUpgrade) -> Response {
    let Some(host) = host else {
        let why = "this wgminer takes no browser devices: start it with -d browser\n";
        return (StatusCode::NOT_FOUND, why).into_response();
    };
    let Some(slot) = host.slot() else {
        let why = format!("{} browser devices are connected already (--browser-devices)\n", host.max());
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    };
    ws.max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .max_write_buffer_size(4 * MAX_FRAME)
        .on_upgrade(move |socket| run(socket, host, slot))
}

async fn run(mut socket: WebSocket, host: Arc<BrowserHost>, _slot: OwnedSemaphorePermit) {
    let ended = serve(&mut socket, &host).await;
    let (code, reason) = match &ended {
        Ok(()) => (1000, "detached".to_string()),
        Err(e) => {
            tracing::warn!("browser device: closing its socket: {e}");
            (e.close_code(), e.to_string())
        }
    };
    // A close frame's reason is at most 123 bytes (RFC 6455, 5.5): cut at a character.
    let mut end = reason.len().min(120);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let close = CloseFrame { code, reason: reason[..end].into() };
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.send(Message::Close(Some(close)))).await;
}

/// Frames until the page leaves (`Ok`), the miner lets its device go (`Ok`), or the page
/// breaks the protocol (the error).
async fn serve(socket: &mut WebSocket, host: &BrowserHost) -> Result<(), SessionError> {
    let welcome = HostFrame::Welcome(host.welcome()).encode();
    if socket.send(Message::Binary(welcome.into())).await.is_err() {
        return Ok(());
    }
    let mut session = Session::new(host.takes_devices());
    let mut link: Option<Link> = None;
    let mut heard = false;
    let first_frame = tokio::time::sleep(FIRST_FRAME_TIMEOUT);
    tokio::pin!(first_frame);
    let mut status = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            message = socket.recv() => {
                let bytes = match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Text(_))) => return Err(SessionError::Text),
                    Some(Ok(_)) => continue, // pings are answered by the socket itself
                };
                heard = true;
                match session.received(&bytes)? {
                    Action::Attach(hello) => link = Some(host.attach(&hello).ok_or(SessionError::NotMining)?),
                    Action::Answer(answer) => {
                        let sent = link.as_ref().map(|l| l.answers.send(answer));
                        if !matches!(sent, Some(Ok(()))) {
                            return Ok(()); // the miner let the device go
                        }
                    }
                }
            }
            piece = async { link.as_mut().expect("guarded").pieces.recv().await }, if link.is_some() => {
                let Some(piece) = piece else { return Ok(()) }; // the miner let the device go
                session.sent(piece.id, piece.range);
                let frame = HostFrame::Piece(Box::new(piece)).encode();
                if socket.send(Message::Binary(frame.into())).await.is_err() {
                    return Ok(());
                }
            }
            _ = status.tick(), if link.is_some() => {
                let device = link.as_ref().expect("guarded").device;
                let frame = HostFrame::Status(host.status(device)).encode();
                if socket.send(Message::Binary(frame.into())).await.is_err() {
                    return Ok(());
                }
            }
            _ = &mut first_frame, if !heard => return Err(SessionError::Silent),
        }
    }
}
