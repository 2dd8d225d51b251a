//! The subcommands.

pub mod chat;
pub mod complete;
pub mod operation;
