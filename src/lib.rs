//! sessionvisor: one sandboxed worker process per agent session.
//!
//! Data flows one way and back:
//! front ([`front`]) → registry ([`registry`]) → session task ([`session`]) →
//! worker ([`worker`], started by [`launcher`] inside a [`sandbox`]) → back.

pub mod assets;
pub mod cli;
pub mod client;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod front;
pub mod launcher;
pub mod limits;
pub mod lines;
pub mod pool;
pub mod registry;
pub mod sandbox;
pub mod session;
pub mod statedir;
pub mod stress;
pub mod worker;
