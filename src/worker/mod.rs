//! A worker process as the supervisor sees it: frames in, frames out, stderr
//! turned into tracing records.

pub mod process;
pub mod protocol;

pub use process::{ChunkSink, Response, WorkerFault, WorkerProcess};
