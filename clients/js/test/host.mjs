// A real `wasmeter serve` process for the tests: the binary is $WASMETER_BIN (set by
// tests/clients.rs), its config a CSV collector over `feed/*.csv` in a temp dir.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const BIN = process.env.WASMETER_BIN;

const CONFIG = `
data_dir = "data"

[server]
listen = "127.0.0.1:0"

[plugins.csv]
builtin = "csv-collector"

[plugins.delta]
builtin = "field-delta"

[sources.trades]
type = "file"
include = ["feed/*.csv"]
reconcile_interval_ms = 200

[pipelines.trades]
sources = ["trades"]
collector = "csv"
delta = "delta"
checkpoint_interval_ms = 200
topics = ["trades"]
`;

/** A temp dir with the config (plus `extra` TOML) and an empty feed directory. */
export function workdir(extra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'wasmeter-js-'));
  mkdirSync(join(dir, 'feed'));
  writeFileSync(join(dir, 'wasmeter.toml'), CONFIG + extra);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A running host. */
export class Host {
  /** Starts the host on `dir`'s config (on `listen` if given) and waits until it listens. */
  static async start(dir, listen) {
    const args = ['--log-level', 'info', 'serve', '--config', join(dir, 'wasmeter.toml'), '--admin-listen', '127.0.0.1:0'];
    if (listen) args.push('--listen', listen);
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const host = new Host(child, dir);
    child.stderr.on('data', (d) => { host.log += d; });
    const lines = createInterface({ input: child.stdout });
    host.addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host did not start within 30 s; log:\n${host.log}`)), 30000);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`host exited (${code}); log:\n${host.log}`)); });
      lines.once('line', (line) => {
        clearTimeout(timer);
        const m = /^wasmeter: listening on http:\/\/(\S+)/.exec(line);
        if (m) resolve(m[1]);
        else reject(new Error(`unexpected first line ${JSON.stringify(line)}; log:\n${host.log}`));
      });
    });
    // Keep draining stdout so the host never blocks on a full pipe.
    lines.on('line', () => {});
    return host;
  }

  constructor(child, dir) {
    this.child = child;
    this.dir = dir;
    this.log = '';
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Appends text to a feed file. */
  append(file, text) {
    appendFileSync(join(this.dir, 'feed', file), text);
  }

  /** GET /api/topics/{topic}: the status and body. */
  async topic(topic) {
    const res = await fetch(`http://${this.addr}/api/topics/${topic}`);
    return { status: res.status, body: await res.json() };
  }

  /** SIGTERM, and a clean exit within 20 s (else SIGKILL and an error). */
  async stop() {
    this.child.kill('SIGTERM');
    let timer;
    const bound = new Promise((resolve) => { timer = setTimeout(() => resolve(null), 20000); });
    const exit = await Promise.race([this.exited, bound]);
    clearTimeout(timer);
    if (!exit) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`host did not stop within 20 s of SIGTERM; log:\n${this.log}`);
    }
    if (exit.code !== 0) throw new Error(`host exited with ${JSON.stringify(exit)}; log:\n${this.log}`);
    return this.log;
  }
}

/** Polls `check` (async; returns a truthy value when done) until done or `ms` pass. */
export async function eventually(check, what, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${last?.stack ?? JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
