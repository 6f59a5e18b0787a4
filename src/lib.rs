//! pglink: keeps a Postgres database reachable over AWS PrivateLink.
//!
//! `run`/`sync`/`plan` keep an NLB target group pointed at the addresses a database
//! endpoint resolves to; the decision of what to change lives in [`plan`], free of I/O.

#[cfg(test)]
mod alloc_count;
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

pub mod aws;
pub mod bootstrap;
pub mod budget;
pub mod commands;
pub mod config;
pub mod discover;
pub mod drill;
pub mod error;
#[cfg(test)]
mod fakes;
pub mod health;
pub mod iam;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ownership;
pub mod plan;
pub mod prefetch;
pub mod probe;
pub mod pulse;
pub mod resolve;
pub mod roles;
pub mod scheduler;
pub mod server;
pub mod sql_probe;
pub mod sync;
pub mod target_state;
pub mod target_view;
pub mod targets;
