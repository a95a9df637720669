//! The `flowd` command: runs Node-RED flows (headless for now), validates them.
//!
//! - `flowd run FLOWS.json [--quiet]`: validate, start, run until SIGINT/SIGTERM,
//!   stop gracefully (exit 0). Debug nodes print one JSON line per message.
//! - `flowd validate FLOWS.json`: prints `ok` (exit 0) or every error (exit 2).

mod cli;

/// mimalloc: markedly faster than the system allocator for the many small,
/// short-lived allocations of message processing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
