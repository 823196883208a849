// Configuration and start-up: a misconfigured gate fails closed with a clear page,
// scripts/check-config says the same before deploying, and the gate starts cold against an
// issuer that is down, or one signing with EdDSA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startStack, freePort, SESSION_SECRET } from './support/stack.mjs';
import { startWorker, ROOT } from '../stack/worker.mjs';
import { Browser, login } from '../stack/client.mjs';

const run = promisify(execFile);
const JSON_ACCEPT = { accept: 'application/json' };

test('a misconfigured gate answers every request with a 500 page naming the key, never proxying', async () => {
  const port = await freePort();
  const worker = await startWorker({
    port,
    config: { issuer: 'https://id.example.com', client_id: 'x', session_lifetime: '7 days', apps: [{ host: 'photos.localhost' }, { host: 'photos.localhost' }], colour: 'blue' },
    secrets: { SESSION_SECRET: 'too-short-secret' },
  });
  try {
    const b = new Browser();
    for (const url of [`http://photos.localhost:${port}/`, `http://photos.localhost:${port}/.portcullis/me`, `http://any.localhost:${port}/x`]) {
      const res = await b.request(url, { headers: { accept: 'text/html' } });
      assert.equal(res.status, 500, url);
      assert.match(res.body, /Portcullis is misconfigured/);
      assert.match(res.body, /PORTCULLIS.colour: unknown field `colour`/, 'the unknown key is named');
      assert.doesNotMatch(res.body, /too-short-secret/, 'secrets never appear');
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(worker.lines.some((l) => l.includes('misconfigured') && l.includes('colour')), 'and it is logged');
  } finally {
    await worker.stop();
  }

  // With the unknown key gone, every remaining problem is listed at once.
  const port2 = await freePort();
  const worker2 = await startWorker({
    port: port2,
    config: { issuer: 'http://id.example.com', session_lifetime: '7 days', cookie_domain: 'example.com', apps: [{ host: 'photos.localhost' }, { host: 'photos.localhost' }] },
    secrets: { SESSION_SECRET: 'too-short-secret' },
  });
  try {
    const res = await new Browser().request(`http://photos.localhost:${port2}/`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 500);
    for (const needle of ['PORTCULLIS.issuer', 'PORTCULLIS.client_id: is required', 'PORTCULLIS.session_lifetime', 'PORTCULLIS.apps[1].host: photos.localhost is configured twice', 'not within cookie_domain', 'SESSION_SECRET: is not valid']) {
      assert.ok(res.body.includes(needle.replace('`', '')), `names ${needle}`);
    }
    assert.ok(!res.body.includes('16 bytes'), 'a secret\'s length is for the log, not the page');
  } finally {
    await worker2.stop();
  }
});

test('a missing SESSIONS binding is a configuration error too', async () => {
  const port = await freePort();
  const worker = await startWorker({
    port,
    script: undefined,
    config: { issuer: 'https://id.example.com', client_id: 'x', apps: [{ host: 'photos.localhost' }] },
    secrets: { SESSION_SECRET },
    withoutKv: true,
  });
  try {
    const res = await new Browser().request(`http://photos.localhost:${port}/`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 500);
    assert.match(res.body, /SESSIONS: KV binding is missing/);
  } finally {
    await worker.stop();
  }
});

test('scripts/check-config validates a wrangler.toml with the same messages', async () => {
  const good = await run(path.join(ROOT, 'scripts/check-config'), [path.join(ROOT, 'wrangler.toml')], { cwd: ROOT });
  assert.match(good.stdout, /configuration is valid/);
  assert.match(good.stdout, /callback URL\s+https:\/\/photos\.example\.com\/\.portcullis\/callback/);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-'));
  const bad = path.join(dir, 'wrangler.toml');
  await writeFile(bad, `name = "x"\nmain = "build/index.js"\n[vars.PORTCULLIS]\nissuer = "https://id.example.com"\nsession_lifetime = "1w"\nauth_host = "auth.example.com"\n[[vars.PORTCULLIS.apps]]\norigin = "https://o.example.com"\n`);
  const vars = path.join(dir, '.dev.vars');
  await writeFile(vars, 'SESSION_SECRET=short\n');
  const failed = await run(path.join(ROOT, 'scripts/check-config'), [bad, '--dev-vars', vars], { cwd: ROOT }).then(
    () => assert.fail('check-config must exit non-zero'),
    (e) => e,
  );
  assert.equal(failed.code, 1);
  for (const needle of [
    'PORTCULLIS.client_id: is required',
    'PORTCULLIS.session_lifetime: "1w" is not a duration',
    'PORTCULLIS.auth_host: needs cookie_domain',
    'PORTCULLIS.apps[0].host: is required',
    'SESSIONS: KV binding is missing',
    'SESSION_SECRET: the secret is 5 bytes',
  ]) {
    assert.ok(failed.stdout.includes(needle), `check-config says ${needle}:\n${failed.stdout}`);
  }
});

test('cold start with the issuer down: a 503 page for new logins', async () => {
  const s = await startStack();
  try {
    s.issuer.setDown(true);
    const res = await new Browser().request(`${s.app}/`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 503);
    assert.match(res.body, /Sign-in is unavailable/);
    assert.match(res.body, /photos\.localhost/);
    const api = await new Browser().request(`${s.app}/api`, { headers: JSON_ACCEPT });
    assert.equal(api.status, 401, 'API clients still get their 401');
    s.issuer.setDown(false);
    const b = new Browser();
    const done = await login(b, `${s.app}/`);
    assert.equal(done.status, 200, 'and logins work again once the issuer is back');
  } finally {
    await s.stop();
  }
});

test('an issuer signing with EdDSA, and session_cache = "0s": exactly one KV read per request', async () => {
  const s = await startStack({ alg: 'EdDSA', config: { session_cache: '0s' } });
  try {
    const b = new Browser();
    const done = await login(b, `${s.app}/`);
    assert.equal(done.status, 200);
    assert.equal(s.issuer.keys[0].alg, 'EdDSA');
    const mark = s.worker.lines.length;
    for (let i = 0; i < 4; i += 1) {
      const res = await b.request(`${s.app}/echo`, { headers: JSON_ACCEPT });
      assert.equal(res.status, 200);
    }
    await new Promise((r) => setTimeout(r, 50));
    const ops = s.worker.kvOps(mark);
    assert.deepEqual(ops.map((o) => o.kv), ['get', 'get', 'get', 'get'], 'one read each, no writes');
  } finally {
    await s.stop();
  }
});

test('scripts/check-config states the revocation bound of each mode, and checks the PEOPLE binding', async () => {
  const template = await readFile(path.join(ROOT, 'wrangler.toml'), 'utf8');
  const plain = await run(path.join(ROOT, 'scripts/check-config'), [path.join(ROOT, 'wrangler.toml')], { cwd: ROOT });
  assert.match(plain.stdout, /revocation\s+elsewhere up to session_cache \+ KV propagation \(about 90s\); bind PEOPLE for 5s/);
  assert.match(plain.stdout, /WebSockets passed to the origin \(photos\.example\.com\): an open socket is not closed by a revocation/);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-'));
  const uncomment = (text, lines) => lines.reduce((t, l) => t.replace(`# ${l}`, l), text);
  const bound = uncomment(template, ['[[durable_objects.bindings]]', 'name = "PEOPLE"', 'class_name = "Person"'])
    .replace('# session_lifetime = "7d"', 'revocation_check = "2s"');
  const relayAlone = path.join(dir, 'relay.toml');
  await writeFile(relayAlone, template.replace('host = "photos.example.com"                          # EDIT', 'host = "photos.example.com"\nwebsockets = "relay"'));
  const noPeople = await run(path.join(ROOT, 'scripts/check-config'), [relayAlone], { cwd: ROOT }).then(() => assert.fail('relay without PEOPLE is refused'), (e) => e);
  assert.match(noPeople.stdout, /PORTCULLIS\.apps\[0\]\.websockets: "relay" needs the PEOPLE binding/);

  const half = path.join(dir, 'half.toml');
  await writeFile(half, bound);
  const refused = await run(path.join(ROOT, 'scripts/check-config'), [half], { cwd: ROOT }).then(() => assert.fail('a binding without its migration is refused'), (e) => e);
  assert.match(refused.stdout, /PEOPLE: no migration declares Person/);

  const whole = path.join(dir, 'whole.toml');
  await writeFile(whole, uncomment(bound, ['[[migrations]]', 'tag = "people-v1"', 'new_sqlite_classes = ["Person"]']));
  const dev = await run(path.join(ROOT, 'scripts/check-config'), [path.join(ROOT, 'dev/wrangler.toml')], { cwd: ROOT });
  assert.match(dev.stdout, /app passwords[^\n]*\n\s+created on auth\.portcullis\.localhost alone/, 'where app passwords are created: said');
  assert.match(dev.stdout, /admin console\s+https:\/\/auth\.portcullis\.localhost\/\.portcullis\/admin, for members of admins/, 'the console: said');
  const noAuthHost = path.join(dir, 'no-auth-host.toml');
  await writeFile(noAuthHost, template.replace('host = "photos.example.com"                          # EDIT', 'host = "photos.example.com"\napp_passwords = true'));
  const without = await run(path.join(ROOT, 'scripts/check-config'), [noAuthHost], { cwd: ROOT });
  assert.match(without.stdout, /photos\.example\.com[\s\S]*app passwords\s+accepted on the whole app\n\s+cannot be created: there is no auth_host/, 'said for the app');
  assert.match(without.stdout, /none can be created without auth_host/);
  assert.match(without.stdout, /admin console\s+off/);

  const ok = await run(path.join(ROOT, 'scripts/check-config'), [whole], { cwd: ROOT });
  assert.match(ok.stdout, /revocation\s+every location within revocation_check \(2s\)/);
  assert.match(ok.stdout, /about 43200 a day \(Free plan: 100,000\)/);
  assert.match(ok.stdout, /WebSockets relayed through the person's object/);
});
