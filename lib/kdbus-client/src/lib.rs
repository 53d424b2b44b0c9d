//! kdbus-client (work in progress)
pub mod wire;
