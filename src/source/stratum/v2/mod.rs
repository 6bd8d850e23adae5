//! Stratum V2 beside v1: the pool's authority key (`key`), the protocol as a state machine
//! without I/O (`session`), and the Noise transport the driver (`super::client`) opens. The
//! wire is SRI's: `noise_sv2`/`codec_sv2` for the encrypted frames, `parsers_sv2` for the
//! messages, `channels_sv2` for channel and job state, all through `stratum-apps`.

pub mod key;
pub mod session;
pub mod transport;

pub use key::AuthorityKey;

/// Every Stratum V2 message, owned: what the session takes in and hands out.
pub type Message = stratum_apps::stratum_core::parsers_sv2::AnyMessageOwned;

use bitcoin::Target;
use stratum_apps::stratum_core::binary_sv2::{Str0255Owned, U256Owned};

/// A string field, cut to the 255 bytes SV2 allows.
pub(crate) fn str255(s: &str) -> Str0255Owned {
    let mut bytes = s.as_bytes().to_vec();
    bytes.truncate(255);
    Str0255Owned::new(bytes).expect("at most 255 bytes")
}

/// A target field (a U256, little-endian on the wire).
pub(crate) fn target(field: &U256Owned) -> Target {
    Target::from_le_bytes(field.to_array())
}
