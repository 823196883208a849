// A local stand-in for the part of the Cloudflare API that `scripts/setup` and
// `wrangler deploy` use (wrangler honours CLOUDFLARE_API_BASE_URL): token and account
// checks, KV namespaces, secrets, script upload (multipart, as wrangler sends it), routes
// and the workers.dev subdomain. It answers in the API's envelope
// (`{success, errors, messages, result}`) and records what it receives, so a test can
// see exactly what a deployment uploaded. Requests it does not know get a 404 in the same
// envelope and are recorded in `unknown`.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export const ACCOUNT_ID = '0123456789abcdef0123456789abcdef';
export const API_TOKEN = 'local-stand-in-token';

const hex = (n) => randomBytes(n).toString('hex');

/** Splits a multipart/form-data body into parts: { name, filename, type, data }. */
function multipart(body, contentType) {
  const boundary = contentType.match(/boundary=(?:"([^"]+)"|([^;]+))/i);
  if (!boundary) return [];
  const delimiter = Buffer.from(`--${boundary[1] || boundary[2]}`);
  const parts = [];
  let start = body.indexOf(delimiter);
  while (start >= 0) {
    const next = body.indexOf(delimiter, start + delimiter.length);
    if (next < 0) break;
    const chunk = body.subarray(start + delimiter.length + 2, next - 2); // skip CRLF
    const split = chunk.indexOf('\r\n\r\n');
    if (split >= 0) {
      const head = chunk.subarray(0, split).toString('utf8');
      const disposition = head.match(/content-disposition:[^\r\n]*/i)?.[0] || '';
      parts.push({
        name: disposition.match(/\bname="([^"]*)"/)?.[1],
        filename: disposition.match(/filename="([^"]*)"/)?.[1],
        type: head.match(/content-type:\s*([^\r\n]+)/i)?.[1],
        data: chunk.subarray(split + 4),
      });
    }
    start = next;
  }
  return parts;
}

/**
 * Starts the stand-in on `port`. `zones`: zone names the account has (routes need one).
 */
export async function startCloudflareApi({ port, host = '127.0.0.1', zones = ['example.com'] } = {}) {
  const state = {
    requests: [], // { method, path }
    unknown: [],
    namespaces: [], // { id, title }
    scripts: new Map(), // name → { metadata, modules: [{ name, type, data }], secrets: Map, routes: [] }
    uploads: [], // every script upload, in order: { name, metadata, modules }
    secretPuts: [], // { script, name } (values are kept only in `scripts`)
    zones: zones.map((name) => ({ id: hex(16), name, status: 'active', account: { id: ACCOUNT_ID } })),
    routes: [], // { id, pattern, script, zone_id }
    subdomain: 'portcullis-test',
  };
  const script = (name) => {
    if (!state.scripts.has(name)) state.scripts.set(name, { metadata: null, modules: [], secrets: new Map(), workersDev: false, versions: [], deployments: [] });
    return state.scripts.get(name);
  };

  /** Records an upload (multipart: `metadata` and the modules); the script runs it from now on. */
  function upload(name, body, req) {
    const parts = multipart(body, req.headers['content-type'] || '');
    const meta = parts.find((p) => p.name === 'metadata');
    if (!meta) return null;
    const metadata = JSON.parse(meta.data.toString('utf8'));
    const modules = parts.filter((p) => p.name !== 'metadata').map((p) => ({ name: p.filename || p.name, type: p.type, data: p.data }));
    const s = script(name);
    const version = { id: hex(16), metadata, modules };
    s.versions.push(version);
    // Secrets survive uploads; vars are replaced (as the API does). Durable Object
    // migrations move the script's migration tag on.
    if (metadata.migrations?.new_tag) s.migrationTag = metadata.migrations.new_tag;
    s.metadata = metadata;
    s.modules = modules;
    state.uploads.push({ name, metadata, modules });
    return version;
  }

  const ok = (result, extra = {}) => [200, { success: true, errors: [], messages: [], result, ...extra }];
  const fail = (status, code, message) => [status, { success: false, errors: [{ code, message }], messages: [], result: null }];
  const auth = (req) => req.headers.authorization === `Bearer ${API_TOKEN}`;

  function route(method, path, query, req, body) {
    let m;
    const A = `/accounts/${ACCOUNT_ID}`;
    if (path === '/user/tokens/verify') return ok({ id: 'token', status: 'active' });
    if (path === '/user') return ok({ id: 'user', email: 'owner@example.com' });
    if (path === '/memberships') return ok([{ id: 'm', account: { id: ACCOUNT_ID, name: 'Homelab' }, status: 'accepted' }]);
    if (path === '/accounts' && method === 'GET') return ok([{ id: ACCOUNT_ID, name: 'Homelab' }]);
    if (path.startsWith('/accounts/') && !path.startsWith(A)) return fail(403, 10000, 'Authentication error');

    // KV namespaces.
    if (path === `${A}/storage/kv/namespaces` && method === 'GET') {
      const page = Number(query.get('page') || 1);
      const perPage = Number(query.get('per_page') || 20);
      const items = state.namespaces.slice((page - 1) * perPage, page * perPage);
      return ok(items, { result_info: { page, per_page: perPage, count: items.length, total_count: state.namespaces.length } });
    }
    if (path === `${A}/storage/kv/namespaces` && method === 'POST') {
      const { title } = JSON.parse(body.toString() || '{}');
      if (!title) return fail(400, 10019, 'missing title');
      if (state.namespaces.some((n) => n.title === title)) return fail(400, 10014, 'a namespace with this account ID and title already exists');
      const ns = { id: hex(16), title, supports_url_encoding: true };
      state.namespaces.push(ns);
      return ok(ns);
    }

    // Zones and routes.
    if (path === '/zones' && method === 'GET') {
      const name = query.get('name');
      return ok(state.zones.filter((z) => !name || z.name === name));
    }
    if ((m = path.match(/^\/zones\/([0-9a-f]+)\/workers\/routes$/))) {
      const zoneId = m[1];
      if (!state.zones.some((z) => z.id === zoneId)) return fail(404, 7003, 'no such zone');
      if (method === 'GET') return ok(state.routes.filter((r) => r.zone_id === zoneId).map(({ id, pattern, script: s }) => ({ id, pattern, script: s })));
      if (method === 'POST') {
        const { pattern, script: s } = JSON.parse(body.toString());
        if (state.routes.some((r) => r.pattern === pattern)) return fail(409, 10020, 'A route with the same pattern already exists');
        const r = { id: hex(16), pattern, script: s, zone_id: zoneId };
        state.routes.push(r);
        return ok({ id: r.id });
      }
    }
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)/routes$`)))) {
      const name = m[1];
      if (method === 'GET') return ok(state.routes.filter((r) => r.script === name).map(({ id, pattern, script: s }) => ({ id, pattern, script: s })));
      if (method === 'PUT') {
        const wanted = JSON.parse(body.toString());
        state.routes = state.routes.filter((r) => r.script !== name);
        for (const w of wanted) {
          const zone = state.zones.find((z) => w.zone_name ? z.name === w.zone_name : w.pattern.split('/')[0].endsWith(z.name));
          state.routes.push({ id: hex(16), pattern: w.pattern, script: name, zone_id: zone?.id });
        }
        return ok(state.routes.filter((r) => r.script === name).map(({ id, pattern, script: s }) => ({ id, pattern, script: s })));
      }
    }

    // The workers.dev subdomain.
    if (path === `${A}/workers/subdomain`) return ok({ subdomain: state.subdomain });
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)/subdomain$`)))) {
      const s = script(m[1]);
      if (method === 'POST') s.workersDev = JSON.parse(body.toString()).enabled;
      return ok({ enabled: s.workersDev, previews_enabled: false });
    }

    // Secrets.
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)/secrets(?:/([\\w-]+))?$`)))) {
      const name = m[1];
      if (!state.scripts.get(name)?.metadata) return fail(404, 10007, 'This Worker does not exist on your account.');
      const s = script(name);
      if (method === 'PUT') {
        const { name: secret, text, type } = JSON.parse(body.toString());
        s.secrets.set(secret, text);
        state.secretPuts.push({ script: name, name: secret });
        return ok({ name: secret, type: type || 'secret_text' });
      }
      // failSecretList: the API failing (as on a network or server error) for a listing.
      if (method === 'GET' && !m[2] && state.failSecretList) return fail(500, 10013, 'An unknown error has occurred.');
      if (method === 'GET' && !m[2]) return ok([...s.secrets.keys()].map((n) => ({ name: n, type: 'secret_text' })));
      if (method === 'DELETE' && m[2]) { s.secrets.delete(m[2]); return ok(null); }
    }

    // Scripts: the service (existence check), settings, upload.
    if ((m = path.match(new RegExp(`^${A}/workers/services/([\\w-]+)$`)))) {
      const s = state.scripts.get(m[1]);
      if (!s?.metadata) return fail(404, 10090, 'This Worker does not exist on your account.');
      return ok({ id: m[1], default_environment: { environment: 'production', script: { id: m[1], last_deployed_from: 'wrangler' } } });
    }
    // The account's scripts (wrangler reads a script's migration tag here before it uploads
    // Durable Object migrations).
    if (path === `${A}/workers/scripts` && method === 'GET') {
      return ok([...state.scripts].filter(([, s]) => s.metadata).map(([id, s]) => ({ id, migration_tag: s.migrationTag, created_on: new Date().toISOString(), modified_on: new Date().toISOString() })));
    }
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)(/settings|/script-settings)?$`)))) {
      const name = m[1];
      if (method === 'GET') {
        const s = state.scripts.get(name);
        if (!s?.metadata) return fail(404, 10007, 'This Worker does not exist on your account.');
        return ok(m[2] ? { bindings: s.metadata.bindings || [], compatibility_date: s.metadata.compatibility_date, logpush: false, tail_consumers: [] } : s.modules.map((x) => x.name));
      }
      // The classic upload: the script, deployed at once.
      if (method === 'PUT' && !m[2]) {
        const version = upload(name, body, req);
        if (!version) return fail(400, 10021, 'no metadata part');
        return ok({ id: name, etag: hex(16), handlers: ['fetch'], compatibility_date: version.metadata.compatibility_date, usage_model: 'standard', deployment_id: version.id, startup_time_ms: 5 });
      }
      if (method === 'PATCH' && m[2]) return ok({});
    }
    // Versions and deployments (what wrangler uses once the Worker exists).
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)/versions$`)))) {
      const name = m[1];
      if (method === 'POST') {
        const version = upload(name, body, req);
        if (!version) return fail(400, 10021, 'no metadata part');
        return ok({ id: version.id, number: state.scripts.get(name).versions.length, resources: { script: { etag: hex(16), handlers: ['fetch'] }, bindings: version.metadata.bindings || [] }, startup_time_ms: 5 });
      }
      const s = state.scripts.get(name);
      if (!s?.metadata) return fail(404, 10007, 'This Worker does not exist on your account.');
      return ok({ items: s.versions.map((v) => ({ id: v.id, metadata: { source: 'wrangler' } })) });
    }
    if ((m = path.match(new RegExp(`^${A}/workers/scripts/([\\w-]+)/deployments$`)))) {
      const s = state.scripts.get(m[1]);
      if (!s?.metadata) return fail(404, 10007, 'This Worker does not exist on your account.');
      if (method === 'POST') {
        const wanted = JSON.parse(body.toString());
        const deployment = { id: hex(16), source: 'wrangler', strategy: wanted.strategy, versions: wanted.versions, created_on: new Date().toISOString() };
        s.deployments.unshift(deployment);
        const live = s.versions.find((v) => v.id === wanted.versions?.[0]?.version_id);
        if (live) { s.metadata = live.metadata; s.modules = live.modules; }
        return ok(deployment);
      }
      return ok({ deployments: s.deployments });
    }
    return null;
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, `http://${req.headers.host}`);
      const path = url.pathname.replace(/^\/client\/v4/, '').replace(/\/$/, '') || '/';
      state.requests.push({ method: req.method, path });
      let answer;
      if (!auth(req)) answer = fail(401, 10000, 'Authentication error');
      else {
        try {
          answer = route(req.method, path, url.searchParams, req, Buffer.concat(chunks));
        } catch (err) {
          answer = fail(400, 10001, `bad request: ${err.message}`);
        }
      }
      if (!answer) {
        state.unknown.push(`${req.method} ${path}`);
        answer = fail(404, 7000, `No route for that URI (stand-in): ${req.method} ${path}`);
      }
      res.writeHead(answer[0], { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer[1]));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    url: `http://${host}:${port}/client/v4`,
    state,
    /** What wrangler needs in its environment to talk to this stand-in. */
    env: {
      CLOUDFLARE_API_BASE_URL: `http://${host}:${port}/client/v4`,
      CLOUDFLARE_API_TOKEN: API_TOKEN,
      CLOUDFLARE_ACCOUNT_ID: ACCOUNT_ID,
      WRANGLER_SEND_METRICS: 'false',
    },
    async stop() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}
