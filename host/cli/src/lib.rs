//! The `wasmeter` command: configuration, `serve`, and the glue between the
//! control plane (`wasmeter-control`), the hub and the server.
//!
//! # Layout
//! - [`cli`]: the command line; [`run`] dispatches it.
//! - [`config`]: the TOML configuration, validated once; [`spec`]: it as the
//!   control plane's typed spec.
//! - [`serve`]: assembling and shutting down the host.
//! - [`reload`]: config reload (SIGHUP, admin API): the file, read again, to the
//!   control plane.
//! - [`admin`]: the authenticated admin API and the `wasmeter plugin` commands.
//! - [`defaults`]: built-in plugins (prebuilt components) and the demo configuration.
//! - [`datadir`]: the data directory is private to the user (created 0700, checked).
//! - [`demo`]: the demo market feed.
//! - [`logging`]: `tracing` output.
//! - [`monitor`]: `/metrics` and `/api/plugins`.
//! - [`new_plugin`]: `wasmeter new`, a plugin project to start from.
//! - [`tail`]: `wasmeter tail`, a command-line subscriber.
//! - [`tokens`]: `[auth]`, subscriber tokens: the keys that verify them.
//! - [`web`]: the dashboard and the browser client, embedded.

pub mod admin;
pub mod broker;
pub mod check_config;
pub mod cli;
pub mod config;
pub mod datadir;
pub mod defaults;
pub mod demo;
pub mod dirlock;
pub mod export;
pub mod export_config;
pub mod history;
pub mod logging;
pub mod monitor;
pub mod new_plugin;
pub mod reload;
pub mod serve;
pub mod spec;
pub mod tail;
pub mod tokens;
pub mod web;

use tokio_util::sync::CancellationToken;
use wasmeter_plugin::{Runtime, RuntimeConfig};

use crate::cli::{Command, ServeArgs, TailArgs};
use crate::config::Config;
use crate::demo::DemoFeed;
use crate::serve::ServeOptions;

/// Runs a subcommand.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve_command(args).await,
        Command::CheckPlugin { files } => check_plugins(files).await,
        Command::CheckConfig { file } => check_config::check_config(&file).await,
        Command::Tail(args) => tail_command(args).await,
        Command::Plugin(args) => admin::command::plugin(args).await,
        Command::ReloadConfig(args) => admin::command::reload_config(args).await,
        Command::New {
            world,
            name,
            lang,
            dir,
            sdk,
        } => {
            let dir = new_plugin::create(world, &name, lang, dir.as_deref(), sdk.as_deref())?;
            println!(
                "created {}: `cd {} && {}`; its README.md says how to load it",
                dir.display(),
                dir.display(),
                lang.build_command()
            );
            Ok(())
        }
        Command::Builtins => {
            for b in defaults::BUILTINS {
                println!("{:<18} {:>7} bytes", b.name, b.bytes.len());
            }
            Ok(())
        }
    }
}

async fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let (mut config, options) = match &args.config {
        Some(path) => (
            Config::load(path)?,
            ServeOptions {
                config_path: Some(path.clone()),
                ..ServeOptions::default()
            },
        ),
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(datadir::default_demo_dir);
            // Given or default, the directory must be private to this user.
            datadir::ensure_private(&dir)?;
            let config = Config::parse(defaults::DEMO_CONFIG, "built-in demo config", &dir)?;
            let demo = DemoFeed {
                dir: dir.join("feed"),
                trades_per_sec: args.demo_rate,
                limit: args.demo_trades,
            };
            let options = ServeOptions {
                demo: Some(demo),
                config_path: None,
            };
            (config, options)
        }
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = args.admin_listen {
        config.admin.listen = listen;
    }
    serve::serve(config, options, CancellationToken::new()).await
}

async fn tail_command(args: TailArgs) -> anyhow::Result<()> {
    let options = tail::TailOptions {
        topics: args.topics,
        url: args.url,
        json: args.json,
        fields: args.fields,
        token: args.token,
    };
    let stop = CancellationToken::new();
    let run = tail::tail(options, stop.clone());
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => result,
        _ = tokio::signal::ctrl_c() => {
            stop.cancel();
            run.await
        }
    }
}

async fn check_plugins(files: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 8,
        ..RuntimeConfig::default()
    })?;
    let mut failed = 0;
    for file in &files {
        match runtime.load_any(file).await {
            Ok(loaded) => {
                let m = loaded.meta();
                println!(
                    "{}: ok: {} {} ({} plugin, {}, contract {}), {} bytes, sha256 {}",
                    file.display(),
                    m.info.name,
                    m.info.version,
                    m.info.kind,
                    if m.info.stateful {
                        "stateful"
                    } else {
                        "stateless"
                    },
                    m.contract,
                    m.size_bytes,
                    &m.hash_hex()[..16]
                );
                if !m.info.emits.is_empty() {
                    println!("  emits: {}", m.info.emits.join(", "));
                }
            }
            Err(e) => {
                failed += 1;
                println!("{e}");
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} plugins refused", files.len());
    Ok(())
}
