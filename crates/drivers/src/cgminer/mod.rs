//! The cgminer RPC family (TCP 4028): the transport every fork shares, the repair pass for the
//! malformed JSON real firmwares send, and the generic cgminer / BFGMiner driver.

pub mod proto;
