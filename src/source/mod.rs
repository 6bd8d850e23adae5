//! Where jobs come from. Today: a Stratum v1 pool. Sources know nothing of devices; they
//! publish work to the scheduler and take verified shares back.

pub mod stratum;
