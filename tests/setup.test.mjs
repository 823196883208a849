// The first deployment, end to end: scripts/setup and `wrangler deploy` against a local
// stand-in of the Cloudflare API; then the bytes wrangler uploaded (not build/) run in
// workerd and sign a person in against the local issuer. Also: a second run changes
// nothing and keeps every session; a wrong issuer is refused; `wrangler deploy --dry-run`
// accepts wrangler.toml and every example, within the Free plan's size limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startCloudflareApi } from '../stack/cloudflare.mjs';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { startWorker, ROOT, COMPATIBILITY_DATE } from '../stack/worker.mjs';
import { Browser, login } from '../stack/client.mjs';
import { freePort, CLIENT_SECRET } from './support/stack.mjs';

const ZONE = 'home.localhost'; // wrangler finds zones by a name of two labels or more
const HOST = `photos.${ZONE}`;
const ARTIFACTS = path.join(ROOT, 'tests', '.artifacts');
let api;
let issuer;
let upstream;
let workerPort;
let dir;
let config;

/** A copy of the project's wrangler.toml outside the tree, with `main` and the build command made absolute. */
async function projectConfigCopy(from = path.join(ROOT, 'wrangler.toml'), name = path.basename(from)) {
  const text = (await readFile(from, 'utf8'))
    .replace(/^main = "build\/index.js"$/m, `main = ${JSON.stringify(path.join(ROOT, 'build/index.js'))}`)
    .replace(/^command = "scripts\/build"$/m, `command = ${JSON.stringify(path.join(ROOT, 'scripts/build'))}`);
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

const setup = (extra = [], env = {}) => run(path.join(ROOT, 'scripts/setup'), [
  '--yes', '--config', config, '--issuer', issuer.url, '--client-id', 'portcullis',
  '--app', `${HOST}=${upstream.url}`, '--zone', ZONE, ...extra,
], { ...api.env, ...env });

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  dir = await mkdtemp(path.join(ARTIFACTS, 'setup-'));
  const [apiPort, issuerPort, upstreamPort] = await Promise.all([freePort(), freePort(), freePort()]);
  workerPort = await freePort();
  api = await startCloudflareApi({ port: apiPort, zones: [ZONE] });
  issuer = await startIssuer({ port: issuerPort, clients: [gateClient({ hosts: [HOST], port: workerPort, secret: CLIENT_SECRET })] });
  upstream = await startUpstream({ port: upstreamPort });
  config = await projectConfigCopy();
});
after(async () => {
  await upstream?.stop();
  await issuer?.stop();
  await api?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('scripts/setup refuses an issuer that cannot be reached or calls itself otherwise, and changes nothing', async () => {
  const before = await readFile(config, 'utf8');
  const dead = await run(path.join(ROOT, 'scripts/setup'), ['--yes', '--config', config, '--issuer', `http://127.0.0.1:${await freePort()}`, '--client-id', 'x', '--app', HOST], api.env);
  assert.equal(dead.code, 1, dead.out);
  assert.match(dead.out, /The issuer cannot be reached/);
  const slash = await run(path.join(ROOT, 'scripts/setup'), ['--yes', '--config', config, '--issuer', `${issuer.url}/`, '--client-id', 'x', '--app', HOST], api.env);
  assert.equal(slash.code, 1, slash.out);
  assert.match(slash.out, new RegExp(`calls itself "${issuer.url}"`));
  const missing = await run(path.join(ROOT, 'scripts/setup'), ['--yes', '--config', config, '--issuer', issuer.url, '--app', HOST], api.env);
  assert.equal(missing.code, 1);
  assert.match(missing.out, /--client-id is required/);
  assert.equal(await readFile(config, 'utf8'), before, 'wrangler.toml untouched');
  assert.equal(api.state.namespaces.length, 0, 'no namespace created');
});

test('scripts/setup creates the namespace, writes wrangler.toml, puts the secrets and deploys; the uploaded bundle signs a person in', { timeout: 600_000 }, async () => {
  const template = await readFile(config, 'utf8');
  const first = await setup(['--no-verify', '--instant-revocation'], { OIDC_CLIENT_SECRET: CLIENT_SECRET });
  assert.equal(first.code, 0, first.out);
  assert.deepEqual(api.state.unknown, [], 'wrangler needed no endpoint the stand-in lacks');

  // wrangler.toml: routes, the created namespace, the issuer and the app; comments kept.
  const written = await readFile(config, 'utf8');
  assert.equal(api.state.namespaces.length, 1);
  const kvId = api.state.namespaces[0].id;
  assert.match(written, new RegExp(`id = "${kvId}"`));
  assert.match(written, new RegExp(`pattern = "${HOST}/\\*", zone_name = "${ZONE}"`));
  assert.match(written, new RegExp(`issuer = "${issuer.url}"`));
  assert.doesNotMatch(written, /photos\.example\.com/, 'the template placeholder is gone');
  for (const comment of template.split('\n').filter((l) => l.startsWith('# Secrets') || l.startsWith('# Portcullis'))) {
    assert.ok(written.includes(comment), `comment kept: ${comment}`);
  }
  assert.match(written, /^\[\[durable_objects\.bindings\]\]\nname = "PEOPLE"\nclass_name = "Person"$/m, 'instant revocation: the binding');
  assert.match(written, /^\[\[migrations\]\]\ntag = "people-v1"\nnew_sqlite_classes = \["Person"\]$/m, 'and its migration');
  assert.match(first.out, /configuration is valid/, 'scripts/check-config ran');
  assert.match(first.out, new RegExp(`https://${HOST}/.portcullis/callback`), 'what to register is printed');

  // Secrets: by name, with wrangler secret put; their values never printed.
  assert.deepEqual(api.state.secretPuts.map((p) => p.name).sort(), ['OIDC_CLIENT_SECRET', 'SESSION_SECRET']);
  const secrets = Object.fromEntries(api.state.scripts.get('portcullis').secrets);
  assert.ok(secrets.SESSION_SECRET.length >= 43);
  assert.ok(!first.out.includes(secrets.SESSION_SECRET), 'the generated secret is never shown');
  assert.ok(!first.out.includes(CLIENT_SECRET));

  // What was uploaded: the main module and the wasm module, the date, the bindings, the routes.
  const upload = api.state.uploads.at(-1);
  const { metadata, modules } = upload;
  const main = modules.find((m) => m.name === metadata.main_module);
  assert.ok(main, `the main module ${metadata.main_module} is uploaded`);
  assert.equal(main.type, 'application/javascript+module');
  const wasm = modules.filter((m) => m.type === 'application/wasm');
  assert.equal(wasm.length, 1, 'one wasm module');
  assert.ok(main.data.toString('utf8').includes(path.basename(wasm[0].name)), 'the main module imports it');
  assert.equal(metadata.compatibility_date, COMPATIBILITY_DATE);
  const kv = metadata.bindings.find((b) => b.name === 'SESSIONS');
  assert.deepEqual({ type: kv.type, id: kv.namespace_id }, { type: 'kv_namespace', id: kvId });
  const vars = metadata.bindings.find((b) => b.name === 'PORTCULLIS');
  assert.equal(vars.type, 'json');
  assert.equal(vars.json.issuer, issuer.url);
  assert.deepEqual(vars.json.apps, [{ host: HOST, origin: upstream.url }]);
  assert.ok(!JSON.stringify(metadata).includes(secrets.SESSION_SECRET), 'secrets are not vars');
  assert.deepEqual(api.state.routes.map((r) => r.pattern), [`${HOST}/*`]);
  const people = metadata.bindings.find((b) => b.name === 'PEOPLE');
  assert.deepEqual({ type: people.type, class_name: people.class_name }, { type: 'durable_object_namespace', class_name: 'Person' });
  assert.deepEqual(metadata.migrations?.steps?.flatMap((st) => st.new_sqlite_classes || []) ?? metadata.migrations?.new_sqlite_classes, ['Person'], `the migration is declared: ${JSON.stringify(metadata.migrations)}`);
  assert.match(main.data.toString('utf8'), /export\s*\{\s*Person\s*\}|export\s*\{[^}]*\bPerson\b[^}]*\}/, 'the main module exports Person');

  // workerd runs exactly those modules with those bindings, and a person signs in.
  const uploaded = path.join(dir, 'uploaded');
  await mkdir(uploaded, { recursive: true });
  for (const m of modules) await writeFile(path.join(uploaded, path.basename(m.name)), m.data);
  const worker = await startWorker({ port: workerPort, build: uploaded, main: metadata.main_module, config: vars.json, secrets, people: true });
  try {
    const b = new Browser('alice');
    const done = await login(b, `http://${HOST}:${workerPort}/`, { username: 'alice' });
    assert.equal(done.status, 200, done.body.slice(0, 300));
    assert.match(done.body, /Signed in as <b>alice@example.com<\/b>/);

    // A second run: nothing changes, the namespace and SESSION_SECRET (so the session) stay,
    // and the deployment is checked from outside (here: the workerd above).
    const second = await setup(['--connect-to', `127.0.0.1:${workerPort}`]);
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /wrangler\.toml: no changes/);
    assert.match(second.out, new RegExp(`keeping ${kvId}`));
    assert.match(second.out, /SESSION_SECRET: kept/);
    assert.match(second.out, /Deployed and checked/);
    assert.equal(api.state.namespaces.length, 1);
    assert.equal(api.state.secretPuts.filter((p) => p.name === 'SESSION_SECRET').length, 1);
    const again = await b.request(`http://${HOST}:${workerPort}/.portcullis/me`, { headers: { accept: 'application/json' } });
    assert.equal(again.status, 200, 'the session survived the second run');

    // A third run while the API cannot list the secrets (a network or API error, not a
    // missing Worker): it stops, and never replaces SESSION_SECRET (that signs everyone out).
    api.state.failSecretList = true;
    const third = await setup(['--no-verify']);
    api.state.failSecretList = false;
    assert.notEqual(third.code, 0, third.out);
    assert.match(third.out, /could not list the Worker's secrets/);
    assert.equal(api.state.secretPuts.filter((p) => p.name === 'SESSION_SECRET').length, 1, 'not replaced');
  } finally {
    await worker.stop();
  }
});

test('wrangler deploy --dry-run accepts wrangler.toml and every example, within the Free plan\'s 3 MB', { timeout: 600_000 }, async () => {
  const files = [path.join(ROOT, 'wrangler.toml'), ...(await readdir(path.join(ROOT, 'examples'))).filter((f) => f.endsWith('.toml')).map((f) => path.join(ROOT, 'examples', f))];
  for (const file of files) {
    const copy = await projectConfigCopy(file, `dry-run-${path.basename(file)}`);
    const out = path.join(dir, `dry-${path.basename(file)}`);
    const r = await run('npx', ['wrangler', 'deploy', '--dry-run', '--config', copy, '--outdir', out], { WRANGLER_SEND_METRICS: 'false' });
    assert.equal(r.code, 0, `${file}: ${r.out}`);
    const size = r.out.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/);
    assert.ok(size, r.out);
    assert.ok(Number(size[2]) < 3 * 1024, `${path.basename(file)}: ${size[2]} KiB compressed, under the Free plan's 3 MB`);
    assert.match(r.out, /env\.SESSIONS/);
    assert.match(r.out, /env\.PORTCULLIS/);
  }
});
