// The gate under plain `workerd serve`, without Miniflare's wrappers: a generated capnp
// configuration, the built modules, the bindings, and KV as a small in-memory service
// worker bound as SESSIONS (plain workerd has no KV simulation). The benchmarks use it to
// measure what the gate costs on the runtime itself.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT, COMPATIBILITY_DATE, collectLines } from './worker.mjs';

const require = createRequire(import.meta.url);

/** The workerd binary that wrangler and Miniflare use (from the `workerd` npm package). */
export function workerdBinary() {
  return process.env.WORKERD_BIN || require('workerd').default;
}

// workerd sends a KV binding's operations to a service as HTTP requests:
// GET/PUT/DELETE https://…/<key>?urlencoded=true (metadata in CF-KV-Metadata; expiry as
// expiration_ttl or expiration), and GET https://…/?prefix=&key_count_limit=&cursor= to list.
const KV_SERVICE = `
const entries = new Map();
const now = () => Math.floor(Date.now() / 1000);
const live = (e) => e && (e.expiration === undefined || e.expiration > now());

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/') {
      const prefix = url.searchParams.get('prefix') || '';
      const limit = Number(url.searchParams.get('key_count_limit') || 1000);
      const start = Number(url.searchParams.get('cursor') || 0);
      const names = [...entries.keys()].filter((k) => k.startsWith(prefix) && live(entries.get(k))).sort();
      const page = names.slice(start, start + limit);
      const complete = start + limit >= names.length;
      return Response.json({
        keys: page.map((name) => {
          const e = entries.get(name);
          return { name, ...(e.expiration ? { expiration: e.expiration } : {}), ...(e.metadata ? { metadata: JSON.parse(e.metadata) } : {}) };
        }),
        list_complete: complete,
        ...(complete ? {} : { cursor: String(start + limit) }),
        cacheStatus: null,
      });
    }
    const key = decodeURIComponent(url.pathname.slice(1));
    if (request.method === 'GET') {
      const e = entries.get(key);
      if (!live(e)) return new Response(null, { status: 404 });
      return new Response(e.value, { headers: e.metadata ? { 'CF-KV-Metadata': e.metadata } : {} });
    }
    if (request.method === 'PUT') {
      const ttl = url.searchParams.get('expiration_ttl');
      const at = url.searchParams.get('expiration');
      entries.set(key, {
        value: await request.arrayBuffer(),
        metadata: request.headers.get('CF-KV-Metadata'),
        expiration: at ? Number(at) : ttl ? now() + Number(ttl) : undefined,
      });
      return new Response(null);
    }
    if (request.method === 'DELETE') {
      entries.delete(key);
      return new Response(null);
    }
    return new Response(null, { status: 405 });
  },
};
`;

const str = (s) => JSON.stringify(String(s));

/**
 * Starts `workerd serve` on `port`. Either the gate (modules from `build`, `config` as
 * PORTCULLIS, `secrets` as text bindings, KV as SESSIONS) or `script`, one ES module with
 * the same bindings. `args` are added to workerd's command line (e.g. `--inspector-addr`). Returns { pid, port, url, lines, stop, firstRequestMs, readyMs }.
 */
export async function startWorkerdServe({ port, config, secrets = {}, script, build = path.join(ROOT, 'build'), args = [] }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-workerd-'));
  const modules = [];
  if (script) {
    await writeFile(path.join(dir, 'worker.mjs'), script);
    modules.push(`(name = "worker.mjs", esModule = embed "worker.mjs")`);
  } else {
    for (const file of await readdir(build)) {
      if (file === 'index.js') {
        await copyFile(path.join(build, file), path.join(dir, file));
        modules.unshift(`(name = "index.js", esModule = embed "index.js")`);
      } else if (file.endsWith('.mjs')) {
        await copyFile(path.join(build, file), path.join(dir, file));
        modules.push(`(name = ${str(file)}, esModule = embed ${str(file)})`);
      } else if (file.endsWith('.wasm')) {
        await copyFile(path.join(build, file), path.join(dir, file));
        modules.push(`(name = ${str(file)}, wasm = embed ${str(file)})`);
      }
    }
  }
  await writeFile(path.join(dir, 'kv.mjs'), KV_SERVICE);
  const bindings = [
    ...(config === undefined ? [] : [`(name = "PORTCULLIS", json = ${str(JSON.stringify(config))})`]),
    ...Object.entries(secrets).map(([k, v]) => `(name = ${str(k)}, text = ${str(v)})`),
    '(name = "SESSIONS", kvNamespace = "kv")',
  ];
  await writeFile(path.join(dir, 'config.capnp'), `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .gate),
    (name = "kv", worker = .kv),
    # Outbound fetches (issuer, upstream) go to loopback in tests and benchmarks.
    (name = "internet", network = (allow = ["public", "private", "local"], tlsOptions = (trustBrowserCas = true))),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);

const gate :Workerd.Worker = (
  modules = [${modules.join(', ')}],
  bindings = [${bindings.join(', ')}],
  compatibilityDate = ${str(COMPATIBILITY_DATE)},
  globalOutbound = "internet",
);

const kv :Workerd.Worker = (
  modules = [(name = "kv.mjs", esModule = embed "kv.mjs")],
  compatibilityDate = ${str(COMPATIBILITY_DATE)},
);
`);
  const spawned = performance.now();
  const child = spawn(workerdBinary(), ['serve', path.join(dir, 'config.capnp'), '--verbose', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  for (const stream of [child.stdout, child.stderr]) collectLines(stream, lines);
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  // Ready once it answers. The first answer also times the cold start: process start,
  // wasm compilation and instantiation, configuration parse and one request.
  let firstRequestMs;
  let readyMs;
  for (let i = 0; ; i += 1) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`workerd exited with ${child.exitCode}:\n${lines.join('\n')}`);
    }
    try {
      const t0 = performance.now();
      await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      firstRequestMs = performance.now() - t0;
      readyMs = performance.now() - spawned;
      break;
    } catch {
      if (i > 200) {
        await stop();
        throw new Error(`workerd did not start listening:\n${lines.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { pid: String(child.pid), port, url: `http://127.0.0.1:${port}`, lines, stop, firstRequestMs, readyMs };
}
