//! The `flowd` command: a Node-RED-compatible flow engine with a built-in
//! MQTT broker.
//!
//! - `flowd`: embedded broker + admin API + runtime on the user directory.
//! - `flowd run FLOWS.json`: headless runtime (optionally with the broker).
//! - `flowd validate FLOWS.json`, `flowd deploy FLOWS.json`, `flowd broker`.
//!
//! Modules: [`cli`] parses arguments and dispatches; [`server`] runs the
//! full product; [`headless`] runs and validates flows files; [`deploy`] is
//! the admin API client; [`broker_cmd`] runs the broker alone.

mod broker_cmd;
mod cli;
mod deploy;
mod headless;
mod server;
mod settings;

/// mimalloc: markedly faster than the system allocator for the many small,
/// short-lived allocations of message processing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
