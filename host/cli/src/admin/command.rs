//! `wasmeter plugin ...` and `wasmeter reload-config`: a request to the admin API,
//! its answer as a readable table (or the JSON with `--json`).

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::BTreeMap;

use anyhow::{Context, bail};
use hyper::Method;
use serde_json::{Value, json};

use wasmeter_control::{ConfigReport, PluginDetail, PluginSummary, SwapReport};

use super::client::{AdminClient, Body};
use crate::cli::{AdminArgs, ComponentArgs, PluginArgs, PluginCommand};

/// Runs a `wasmeter plugin` command.
pub async fn plugin(args: PluginArgs) -> anyhow::Result<()> {
    let client = connect(&args.admin)?;
    let json = args.admin.json;
    let path = |name: &str, op: &str| format!("/v1/plugins/{}{op}", encode(name));
    match args.command {
        PluginCommand::List => {
            let answer: Value = client.call(Method::GET, "/v1/plugins", Body::Empty).await?;
            if json {
                return print_json(&answer);
            }
            let plugins: Vec<PluginSummary> = serde_json::from_value(answer["plugins"].clone())?;
            print!("{}", list_table(&plugins));
        }
        PluginCommand::Inspect { name } => {
            let answer: Value = client
                .call(Method::GET, &path(&name, ""), Body::Empty)
                .await?;
            if json {
                return print_json(&answer);
            }
            print!("{}", detail_text(&serde_json::from_value(answer)?));
        }
        PluginCommand::Load {
            name,
            component,
            pipelines,
        } => {
            let (query, body) = component_request(&component, json!({ "pipelines": pipelines }))?;
            let answer = client
                .call(Method::POST, &format!("{}{query}", path(&name, "")), body)
                .await?;
            report(json, "loaded", answer)?;
        }
        PluginCommand::Swap {
            name,
            component,
            fresh_state,
        } => {
            let (query, body) =
                component_request(&component, json!({ "fresh_state": fresh_state }))?;
            let answer = client
                .call(
                    Method::POST,
                    &format!("{}{query}", path(&name, "/swap")),
                    body,
                )
                .await?;
            report(json, "swapped", answer)?;
        }
        PluginCommand::Reload { name } => {
            let answer = client
                .call(Method::POST, &path(&name, "/reload"), Body::Empty)
                .await?;
            report(json, "reloaded", answer)?;
        }
        PluginCommand::Rollback { name, fresh_state } => {
            let op = if fresh_state {
                "/rollback?fresh_state=true"
            } else {
                "/rollback"
            };
            let answer = client
                .call(Method::POST, &path(&name, op), Body::Empty)
                .await?;
            report(json, "rolled back", answer)?;
        }
        PluginCommand::Unload { name } => {
            let answer: Value = client
                .call(Method::DELETE, &path(&name, ""), Body::Empty)
                .await?;
            if json {
                return print_json(&answer);
            }
            println!("unloaded {name}");
        }
        PluginCommand::Quarantine { name } => {
            quarantine(&client, json, &name, "/quarantine").await?
        }
        PluginCommand::Release { name } => quarantine(&client, json, &name, "/release").await?,
    }
    Ok(())
}

/// Runs `wasmeter reload-config`.
pub async fn reload_config(args: AdminArgs) -> anyhow::Result<()> {
    let client = connect(&args)?;
    let answer: Value = client
        .call(Method::POST, "/v1/config/reload", Body::Empty)
        .await?;
    if args.json {
        return print_json(&answer);
    }
    let r: ConfigReport = serde_json::from_value(answer)?;
    let line = |what: &str, items: &[String]| {
        if !items.is_empty() {
            println!("{what:<18} {}", items.join(", "));
        }
    };
    line("started", &r.started);
    line("stopped", &r.stopped);
    line("restarted", &r.restarted);
    line("plugins added", &r.plugins_added);
    line("plugins removed", &r.plugins_removed);
    line("plugins updated", &r.plugins_updated);
    line("needs a restart", &r.needs_restart);
    for (what, why) in &r.failed {
        println!("failed             {what}: {why}");
    }
    if r.started.len()
        + r.stopped.len()
        + r.restarted.len()
        + r.plugins_added.len()
        + r.plugins_removed.len()
        + r.plugins_updated.len()
        + r.needs_restart.len()
        + r.failed.len()
        == 0
    {
        println!("no changes");
    }
    if !r.failed.is_empty() {
        bail!(
            "{} part(s) of the new config failed to apply",
            r.failed.len()
        );
    }
    Ok(())
}

fn connect(args: &AdminArgs) -> anyhow::Result<AdminClient> {
    AdminClient::locate(
        args.admin.as_deref(),
        args.token.clone(),
        args.token_file.as_deref(),
        args.config.as_deref(),
        args.ca_file.as_deref(),
    )
}

async fn quarantine(client: &AdminClient, json: bool, name: &str, op: &str) -> anyhow::Result<()> {
    let path = format!("/v1/plugins/{}{op}", encode(name));
    let answer: Value = client.call(Method::POST, &path, Body::Empty).await?;
    if json {
        return print_json(&answer);
    }
    let s: PluginSummary = serde_json::from_value(answer)?;
    println!("{name}: {}", s.state);
    Ok(())
}

/// The query string and body for a component: an upload (options in the query) or
/// a path on the host (options in the JSON body).
fn component_request(c: &ComponentArgs, mut options: Value) -> anyhow::Result<(String, Body)> {
    let mut config = BTreeMap::new();
    for kv in &c.settings {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--set {kv}: expected KEY=VALUE");
        };
        config.insert(k.to_string(), v.to_string());
    }
    if !config.is_empty() {
        options["config"] = json!(config);
    }
    if c.remote {
        options["path"] = json!(c.file);
        return Ok((String::new(), Body::Json(options)));
    }
    let bytes =
        std::fs::read(&c.file).with_context(|| format!("cannot read {}", c.file.display()))?;
    let mut query = Vec::new();
    for (k, v) in options.as_object().expect("an object") {
        let v = match v {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            Value::Object(_) => v.to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !v.is_empty() {
            query.push(format!("{k}={}", encode(&v)));
        }
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    Ok((query, Body::Wasm(bytes)))
}

fn report(json: bool, what: &str, answer: Value) -> anyhow::Result<()> {
    if json {
        return print_json(&answer);
    }
    let r: SwapReport = serde_json::from_value(answer)?;
    if r.unchanged {
        println!(
            "{}: unchanged (the file has the running version, sha256 {})",
            r.plugin,
            &r.hash[..16]
        );
        return Ok(());
    }
    let from = r.replaced.map(|v| format!("{v} -> ")).unwrap_or_default();
    println!(
        "{what} {}: {from}{} (sha256 {})",
        r.plugin,
        r.version,
        &r.hash[..16]
    );
    for p in &r.pipelines {
        println!(
            "  {:<16} pause {:>8.1} us   state {}",
            p.pipeline, p.pause_us, p.state
        );
    }
    Ok(())
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `plugin list` as a table.
fn list_table(plugins: &[PluginSummary]) -> String {
    let mut rows = vec![
        [
            "NAME",
            "KIND",
            "PLUGIN",
            "VERSION",
            "STATE",
            "PIPELINES",
            "CALLS",
            "ERRORS",
            "SWAPS",
            "SHA256",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in plugins {
        rows.push(vec![
            p.name.clone(),
            p.kind.clone(),
            p.plugin.clone(),
            p.version.clone(),
            p.state.to_string(),
            if p.pipelines.is_empty() {
                "-".into()
            } else {
                p.pipelines.join(",")
            },
            p.calls.to_string(),
            p.errors.to_string(),
            p.swaps.to_string(),
            p.hash[..12].to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for p in plugins {
        if let Some(e) = &p.last_error {
            out.push_str(&format!("{}: last error: {e}\n", p.name));
        }
    }
    out
}

/// `plugin inspect` as text.
fn detail_text(d: &PluginDetail) -> String {
    let s = &d.summary;
    let mut out = format!(
        "{} ({} plugin {} {}): {}\n  state      {}\n  sha256     {}\n  origin     {}\n  contract   wasmeter:plugin@{}\n  stateful   {}\n  size       {} bytes\n  limits     call timeout {} ms, memory {} bytes\n",
        s.name,
        s.kind,
        s.plugin,
        s.version,
        d.description,
        s.state,
        s.hash,
        s.origin,
        d.contract,
        d.stateful,
        d.size_bytes,
        d.call_timeout_ms,
        d.memory_limit_bytes
    );
    if !d.emits.is_empty() {
        out.push_str(&format!("  emits      {}\n", d.emits.join(", ")));
    }
    for (k, v) in &d.config {
        out.push_str(&format!("  config     {k} = {v}\n"));
    }
    for i in &d.instances {
        out.push_str(&format!(
            "  instance   {} ({}): {} calls, {} failures, {} rebuilds{}\n",
            i.pipeline,
            i.role,
            i.calls,
            i.failures,
            i.rebuilds,
            if i.quarantined { ", QUARANTINED" } else { "" }
        ));
    }
    for v in &d.history {
        out.push_str(&format!(
            "  previous   {} sha256 {} from {}\n",
            v.version,
            &v.hash[..16],
            v.origin
        ));
    }
    if let Some(e) = &s.last_error {
        out.push_str(&format!("  last error {e}\n"));
    }
    out
}

/// Percent-encodes a name for a path or query.
fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}
