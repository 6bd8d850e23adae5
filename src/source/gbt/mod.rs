//! Solo mining through a node's getblocktemplate: `rpc` speaks to the node, `template` reads
//! its templates, `client` keeps work fresh and submits the blocks found.

pub mod client;
pub mod rpc;
pub mod template;
