//! The wire formats, at the bottom of the house: Stratum v1's lines and Stratum V2's frames,
//! shared by the pool clients (`source::stratum`) and the embedded pools (`pool`), neither of
//! which imports the other. Nothing here keeps protocol state.

use std::time::Duration;

pub mod stratum_v1;
pub mod stratum_v2;

/// A peer that does not take a message within this long has stopped reading.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a connection's messages go, client or pool side, v1 lines or V2 frames; a peer that
/// does not take one within `SEND_TIMEOUT` has stopped reading.
pub trait Outbox<M> {
    fn put(&mut self, message: M) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// `sent`, unless it takes longer than `SEND_TIMEOUT`.
async fn within_timeout<E: Into<TransportError>>(
    sent: impl Future<Output = Result<(), E>>,
) -> Result<(), TransportError> {
    match tokio::time::timeout(SEND_TIMEOUT, sent).await {
        Ok(sent) => sent.map_err(Into::into),
        Err(_) => Err(TransportError::StoppedReading),
    }
}

/// Why a connection's transport ended, or a message could not go out.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a line from the peer is over {0} bytes")]
    LineTooLong(usize),
    #[error(transparent)]
    Frame(#[from] stratum_v2::FrameError),
    /// SRI's Noise stream, in its own words.
    #[error("{0}")]
    Noise(String),
    #[error("the peer stopped reading")]
    StoppedReading,
}
