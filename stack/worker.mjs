// Runs the built worker (build/index.js + wasm) in workerd through Miniflare, with the
// SESSIONS namespace behind a thin probe that logs every KV operation, so tests can
// count reads and writes. Worker log lines are collected as well.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The one source of the compatibility date: the deployed wrangler.toml.
export const COMPATIBILITY_DATE = fs.readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8')
  .match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];

// The probe stands in for the KV binding and forwards to the real (local) namespace.
const KV_PROBE = `
export default function (env) {
  const kv = env.INNER;
  const log = (op, key) => console.log(JSON.stringify({ kv: op, key }));
  return {
    get: (key, options) => { log('get', key); return kv.get(key, options); },
    getWithMetadata: (key, options) => { log('get', key); return kv.getWithMetadata(key, options); },
    put: (key, value, options) => { log('put', key); return kv.put(key, value, options); },
    delete: (key) => { log('delete', key); return kv.delete(key); },
    list: (options) => { log('list', (options && options.prefix) || ''); return kv.list(options); },
  };
}
`;

/** Appends each complete line a stream writes to `lines` (and hands it to `onLine`). */
export function collectLines(stream, lines, onLine = () => {}) {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      lines.push(line);
      onLine(line);
    }
  });
}

/**
 * Starts the gate.
 * - config: the PORTCULLIS object; secrets: { SESSION_SECRET, OIDC_CLIENT_SECRET?, ... }
 * - script: another worker module to run instead (benchmarks' pass-through baseline).
 * - build, main: the directory of the modules and the main module's name in it (default
 *   build/index.js; the deploy test runs what `wrangler deploy` uploaded).
 * - kvProbe: false binds SESSIONS to the namespace directly, as `wrangler dev` does (for
 *   benchmarks: the probe's extra hop and log line would count as the gate's cost).
 * - stripCfConnectingIp: Miniflare's own option, on by default as in `wrangler dev`: the
 *   worker's outgoing fetches pass through a JavaScript worker of Miniflare's that copies
 *   their headers to drop CF-Connecting-IP (bench/floor.mjs measures what that costs).
 */
export async function startWorker({ port, config, secrets = {}, script, withoutKv = false, kvProbe = true, build = path.join(ROOT, 'build'), main = 'index.js', onLine = () => {}, kvPersist, stripCfConnectingIp = true }) {
  const lines = [];
  const collect = (stream) => collectLines(stream, lines, onLine);
  const gate = script
    ? { name: 'portcullis', modules: true, script, compatibilityDate: COMPATIBILITY_DATE, bindings: { ...secrets }, stripCfConnectingIp }
    : {
      name: 'portcullis',
      modules: true,
      scriptPath: path.join(build, main),
      modulesRoot: build,
      modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
      compatibilityDate: COMPATIBILITY_DATE,
      stripCfConnectingIp,
      bindings: { ...(config === undefined ? {} : { PORTCULLIS: config }), ...secrets },
      ...(withoutKv ? {} : kvProbe ? { wrappedBindings: { SESSIONS: 'kv-probe' } } : { kvNamespaces: { SESSIONS: 'sessions' } }),
    };
  const mf = new Miniflare({
    host: '127.0.0.1',
    port,
    // On disk rather than in workerd's memory (the soak test measures workerd's memory).
    ...(kvPersist ? { kvPersist } : {}),
    workers: [
      gate,
      {
        name: 'kv-probe',
        modules: [{ type: 'ESModule', path: 'kv-probe.mjs', contents: KV_PROBE }],
        kvNamespaces: { INNER: 'sessions' },
      },
    ],
    handleRuntimeStdio(stdout, stderr) {
      collect(stdout);
      collect(stderr);
    },
  });
  const url = await mf.ready;
  const kv = await mf.getKVNamespace('INNER', 'kv-probe');
  return {
    mf,
    url: url.toString().replace(/\/$/, ''),
    port,
    /** Lines logged so far (KV probe lines are JSON with a `kv` field). */
    lines,
    /** KV operations logged since `mark` (an index into `lines`). */
    kvOps(mark = 0) {
      return lines.slice(mark).flatMap((l) => {
        try {
          const j = JSON.parse(l);
          return j.kv ? [j] : [];
        } catch {
          return [];
        }
      });
    },
    /** The local KV namespace itself, bypassing the probe. */
    kv,
    async stop() { await mf.dispose(); },
  };
}
