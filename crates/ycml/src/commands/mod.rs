//! The subcommands.

pub mod batch;
pub mod chat;
pub mod complete;
pub mod datasets;
pub mod embed;
pub mod operation;
pub mod tuning;
