//! The running hashmesh node: it keeps an inventory of a site's devices, discovers new ones,
//! polls them all on schedule, keeps their history and exports metrics.

pub mod export;
