//! The cloud API services the emulator serves, each over the shared [`State`](crate::state::State).

pub(crate) mod endpoint;
pub(crate) mod iam;
pub(crate) mod operation;
pub(crate) mod text_generation;
