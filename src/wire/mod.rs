//! The wire formats, at the bottom of the house: Stratum v1's lines and Stratum V2's frames,
//! shared by the pool clients (`source::stratum`) and the embedded pools (`pool`), neither of
//! which imports the other. Nothing here keeps protocol state.

pub mod stratum_v1;
pub mod stratum_v2;

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
    #[error("the pool stopped reading")]
    StoppedReading,
}
