//! The `wasmeter` binary: parses the command line, sets up logging, and calls the
//! library.

use clap::Parser;
use wasmeter::cli::Cli;

/// jemalloc: the data path's many small allocations cost a quarter less CPU
/// than with the system allocator, at lower RSS (BENCHMARKS.md, "Allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = wasmeter::logging::init(&cli.log_level, cli.log_format) {
        eprintln!("wasmeter: {e}");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wasmeter: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(wasmeter::run(cli.command));
    // Do not wait for a blocking task that does not end (the host already gave
    // its pipelines their bounded shutdown).
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasmeter: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
