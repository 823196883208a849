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

// Another location's view of KV (tests of revocation across locations): every read is
// answered with the value this view first saw for the key within the last LAG_MS, as a
// location whose edge cache still holds the old value does. Writes go straight through.
const KV_LAGGING = `
const seen = new Map();
export default function (env) {
  const kv = env.INNER;
  const lag = Number(env.LAG_MS);
  const log = (op, key) => console.log(JSON.stringify({ kv: op, key, location: 'b' }));
  return {
    async get(key, options) {
      log('get', key);
      const now = Date.now();
      const value = await kv.get(key, options);
      const history = (seen.get(key) || []).filter((e) => e.at > now - lag);
      history.push({ at: now, value });
      seen.set(key, history);
      return history[0].value;
    },
    put: (key, value, options) => { log('put', key); return kv.put(key, value, options); },
    delete: (key) => { log('delete', key); return kv.delete(key); },
    list: (options) => { log('list', (options && options.prefix) || ''); return kv.list(options); },
  };
}
`;

// In front of two locations: a request with 'x-location: b' goes to the second one.
const LOCATIONS = `
export default {
  fetch(request, env) {
    return (request.headers.get('x-location') === 'b' ? env.B : env.A).fetch(request);
  },
};
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
 * - people: bind PEOPLE, the persons' Durable Objects (class Person of the gate itself);
 *   or { standIn: '<module source>' }: bind it to the class Person of that module instead
 *   (an object that answers badly, to see what the gate does then).
 * - secondLocation: { lagMs }: a second gate (requests with `x-location: b`) sharing the
 *   persons' objects, its KV reads lagging by lagMs (needs people).
 */
export async function startWorker({ port, config, secrets = {}, script, withoutKv = false, kvProbe = true, build = path.join(ROOT, 'build'), main = 'index.js', onLine = () => {}, kvPersist, stripCfConnectingIp = true, people = false, secondLocation }) {
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
      ...(people ? { durableObjects: { PEOPLE: { className: 'Person', useSQLite: true, ...(people.standIn ? { scriptName: 'people-stand-in' } : {}) } } } : {}),
    };
  const standIn = people?.standIn ? [{
    name: 'people-stand-in',
    modules: [{ type: 'ESModule', path: 'people-stand-in.mjs', contents: people.standIn }],
    compatibilityDate: COMPATIBILITY_DATE,
    durableObjects: { PEOPLE: { className: 'Person', useSQLite: true } },
  }] : [];
  const locations = secondLocation ? [
    {
      name: 'locations',
      modules: [{ type: 'ESModule', path: 'locations.mjs', contents: LOCATIONS }],
      serviceBindings: { A: 'portcullis', B: 'portcullis-b' },
    },
    {
      ...gate,
      name: 'portcullis-b',
      wrappedBindings: { SESSIONS: 'kv-lagging' },
      durableObjects: { PEOPLE: { className: 'Person', scriptName: 'portcullis', useSQLite: true } },
    },
    {
      name: 'kv-lagging',
      modules: [{ type: 'ESModule', path: 'kv-lagging.mjs', contents: KV_LAGGING }],
      kvNamespaces: { INNER: 'sessions' },
      bindings: { LAG_MS: String(secondLocation.lagMs) },
    },
  ] : [];
  const mf = new Miniflare({
    host: '127.0.0.1',
    port,
    // On disk rather than in workerd's memory (the soak test measures workerd's memory).
    ...(kvPersist ? { kvPersist } : {}),
    workers: [
      ...locations.slice(0, 1),
      gate,
      ...locations.slice(1),
      ...standIn,
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
