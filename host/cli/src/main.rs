//! The `wasmeter` binary: parses the command line, sets up logging, and calls the
//! library.

use clap::Parser;
use wasmeter::cli::Cli;

/// jemalloc: the data path's many small allocations cost a quarter less CPU
/// than with the system allocator, at lower RSS (BENCHMARKS.md, "Allocator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (`_RJEM_MALLOC_CONF` in the
/// environment overrides them): freed pages go back to the system after about a
/// second instead of ten, and a background thread of jemalloc's returns them, not
/// the threads that allocate. The host's memory comes and goes in bursts (a
/// backlog's chunks, snapshots for a thousand subscribers); with the defaults it
/// held those bursts' pages for ten seconds, 10-20 MiB above what it used at
/// 10,000 symbols. Returning them from the allocating threads instead cost the
/// backlog a fifth to a third of its speed (BENCHMARKS.md, "jemalloc returns
/// freed pages after a second").
#[cfg(not(target_env = "msvc"))]
// SAFETY: jemalloc reads this symbol as its `const char *malloc_conf`: a
// pointer to a NUL-terminated string that lives as long as the process.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads at start.
#[cfg(not(target_env = "msvc"))]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: it points at immutable static bytes.
#[cfg(not(target_env = "msvc"))]
unsafe impl Sync for MallocConf {}

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
