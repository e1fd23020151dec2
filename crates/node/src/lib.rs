//! The running hashmesh node: it keeps an inventory of a site's devices, discovers new ones,
//! polls them all on schedule, keeps their history and exports metrics.
//!
//! Start one with [`Node::start`] and a [`Config`]; the parts are usable on their own.

pub mod api;
pub mod auth;
pub mod config;
pub mod discovery;
pub mod error;
pub mod export;
pub mod http;
pub mod live;
pub mod logins;
pub mod metrics;
pub mod node;
pub mod poller;
pub mod remote;
pub mod rollup;
pub mod row;
pub mod webui;

pub use config::Config;
pub use node::{Node, NodeError, NodeInner};
