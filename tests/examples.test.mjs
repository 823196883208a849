// The example configurations, run for real: each examples/*.toml is validated by
// scripts/check-config, its PORTCULLIS block must appear verbatim in docs/examples.md, and the
// behaviour its section promises is exercised against the worker (issuer and origins
// swapped for the local ones, service-token hashes for fresh ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { ROOT } from '../stack/worker.mjs';
import { createAppPassword } from './support/app-passwords.mjs';

const run = promisify(execFile);
const JSON_ACCEPT = { accept: 'application/json' };
const readme = await readFile(path.join(ROOT, 'docs/examples.md'), 'utf8');

async function example(name) {
  const file = path.join(ROOT, 'examples', name);
  const text = await readFile(file, 'utf8');
  const block = text.slice(text.indexOf('[vars.PORTCULLIS]')).trim();
  assert.ok(readme.includes(block), `docs/examples.md shows examples/${name} verbatim`);
  const summary = (await run(path.join(ROOT, 'scripts/check-config'), [file], { cwd: ROOT })).stdout;
  assert.match(summary, /configuration is valid/);
  const config = JSON.parse((await run(path.join(ROOT, 'scripts/check-config'), [file, '--json'], { cwd: ROOT })).stdout);
  const tokens = {};
  for (const t of config.service_tokens || []) {
    tokens[t.name] = JSON.parse((await run(path.join(ROOT, 'scripts/service-token'), [t.name, '--json'])).stdout);
  }
  const hosts = [...config.apps.map((a) => a.host), ...(config.auth_host ? [config.auth_host] : [])];
  const s = await startStack({
    callbackHosts: hosts,
    rawConfig: ({ issuer, upstream }) => ({
      ...config,
      issuer,
      apps: config.apps.map((a) => ({ ...a, origin: upstream })),
      ...(config.service_tokens ? {
        service_tokens: config.service_tokens.map((t) => ({ ...t, client_id: tokens[t.name].client_id, secret_sha256: tokens[t.name].secret_sha256 })),
      } : {}),
    }),
  });
  return { s, config, tokens, summary };
}

async function signIn(s, host, user) {
  const b = new Browser(user);
  return { b, res: await login(b, `${s.at(host)}/`, { username: user }) };
}

test('Immich: family on the web, the mobile app by custom proxy headers (service token or app password), shared links public', async () => {
  const { s, tokens } = await example('immich.toml');
  try {
    const host = 'photos.example.com';
    const pair = { 'portcullis-client-id': tokens['immich-mobile'].client_id, 'portcullis-client-secret': tokens['immich-mobile'].secret };
    const mobile = await new Browser().request(`${s.at(host)}/api/server/ping`, { headers: { ...JSON_ACCEPT, ...pair } });
    assert.equal(mobile.status, 200);
    assert.equal(mobile.json().headers['x-auth-request-user'], 'service:immich-mobile');
    const noCreds = await new Browser().request(`${s.at(host)}/api/server/ping`, { headers: { accept: 'text/html' } });
    assert.equal(noCreds.status, 401, 'the app sees a clean 401, never a login page');
    assert.equal((await new Browser().request(`${s.at(host)}/share/abc123`, { headers: { accept: 'text/html' } })).status, 200, 'shared links');
    const { b: alice, res } = await signIn(s, host, 'alice');
    assert.equal(res.status, 200, 'family member');
    assert.equal((await signIn(s, host, 'bob')).res.status, 403, 'guest');
    // Alice's own app password for her phone, as the same two headers.
    const mine = await createAppPassword(alice, s.at(host), { app: host, label: "Alice's Pixel" });
    const phone = await new Browser().request(`${s.at(host)}/api/server/ping`, {
      headers: { ...JSON_ACCEPT, 'portcullis-client-id': mine.id, 'portcullis-client-secret': mine.secret },
    });
    assert.equal(phone.status, 200);
    assert.equal(phone.json().headers['x-auth-request-user'], 'alice@example.com');
    assert.equal(phone.json().headers['x-auth-request-credential'], "Alice's Pixel");
    const web = await new Browser().request(`${s.at(host)}/photos`, {
      headers: { ...JSON_ACCEPT, 'portcullis-client-id': mine.id, 'portcullis-client-secret': mine.secret },
    });
    assert.equal(web.status, 401, 'only on app_password_paths');
  } finally {
    await s.stop();
  }
});

test('Sonarr/Radarr: admins only; nzb360 by Basic auth (service token or app password)', async () => {
  const { s, tokens } = await example('arr.toml');
  try {
    const t = tokens.nzb360;
    const basic = `Basic ${Buffer.from(`${t.client_id}:${t.secret}`).toString('base64')}`;
    for (const host of ['sonarr.example.com', 'radarr.example.com']) {
      const res = await new Browser().request(`${s.at(host)}/api/v3/queue`, { headers: { ...JSON_ACCEPT, authorization: basic, 'x-api-key': 'sonarr-key' } });
      assert.equal(res.status, 200, host);
      assert.equal(res.json().headers['x-api-key'], 'sonarr-key', "the app's own API key passes");
      assert.equal(res.json().headers.authorization, undefined);
    }
    const { b: alice, res } = await signIn(s, 'sonarr.example.com', 'alice');
    assert.equal(res.status, 200, 'admin');
    assert.equal((await signIn(s, 'sonarr.example.com', 'carol')).res.status, 403, 'not an admin');
    // An app password of alice's for Sonarr, as nzb360's Basic user name and password.
    const mine = await createAppPassword(alice, s.at('sonarr.example.com'), { app: 'sonarr.example.com', label: 'nzb360' });
    const ownBasic = `Basic ${Buffer.from(`${mine.id}:${mine.secret}`).toString('base64')}`;
    const sonarr = await new Browser().request(`${s.at('sonarr.example.com')}/api/v3/queue`, { headers: { ...JSON_ACCEPT, authorization: ownBasic } });
    assert.equal(sonarr.status, 200);
    assert.equal(sonarr.json().headers['x-auth-request-credential'], 'nzb360');
    const radarr = await new Browser().request(`${s.at('radarr.example.com')}/api/v3/queue`, { headers: { ...JSON_ACCEPT, authorization: ownBasic } });
    assert.equal(radarr.status, 401, 'one app per app password');
  } finally {
    await s.stop();
  }
});

test('Home Assistant: browser behind the gate, companion-app paths left to Home Assistant', async () => {
  const { s } = await example('home-assistant.toml');
  try {
    const host = 'ha.example.com';
    for (const p of ['/api/websocket', '/api/states', '/auth/token', '/auth/login_flow/abc']) {
      assert.equal((await new Browser().request(`${s.at(host)}${p}`, { headers: JSON_ACCEPT })).status, 200, p);
    }
    assert.equal((await new Browser().request(`${s.at(host)}/lovelace/0`, { headers: { accept: 'text/html' } })).status, 303);
    assert.equal((await signIn(s, host, 'alice')).res.status, 200);
    assert.equal((await signIn(s, host, 'bob')).res.status, 403);
  } finally {
    await s.stop();
  }
});

test('Homepage: logins on the auth host, one session for every subdomain', async () => {
  const { s, summary } = await example('homepage.toml');
  try {
    assert.match(summary, /callback URL\s+https:\/\/auth\.example\.com\/\.portcullis\/callback/);
    const { b, res } = await signIn(s, 'home.example.com', 'alice');
    assert.equal(res.status, 200);
    assert.ok(res.chain.some((r) => r.url.startsWith(`${s.at('auth.example.com')}/.portcullis/callback`)), 'the callback is on the auth host');
    const session = b.cookies.find((c) => c.name === '__Secure-portcullis-session');
    assert.equal(session?.domain, 'example.com');
    assert.equal((await signIn(s, 'home.example.com', 'carol')).res.status, 403, 'carol is neither family nor grandma');
  } finally {
    await s.stop();
  }
});

test('every wrangler.toml states the one compatibility date of wrangler.toml', async () => {
  // wrangler reads each file on its own, so the date is written in each; the deployed
  // wrangler.toml is the source, and the dev stack and the examples must not drift from it.
  const date = (text) => text.match(/^compatibility_date\s*=\s*"([^"]+)"/m)?.[1];
  const source = date(await readFile(path.join(ROOT, 'wrangler.toml'), 'utf8'));
  assert.ok(source);
  const { readdir } = await import('node:fs/promises');
  const files = ['dev/wrangler.toml', ...(await readdir(path.join(ROOT, 'examples'))).map((f) => `examples/${f}`)];
  for (const f of files) {
    assert.equal(date(await readFile(path.join(ROOT, f), 'utf8')), source, f);
  }
});
