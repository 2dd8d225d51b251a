//! The subcommands.

pub mod chat;
pub mod complete;
pub mod datasets;
pub mod operation;
pub mod tuning;
