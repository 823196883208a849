// WebSockets relayed through the person's Durable Object (PEOPLE bound: websockets
// defaults to "relay"): frames, the subprotocol and close codes pass intact, and the socket
// is closed with 1008 within revocation_check of a revocation made anywhere (here: at a
// second location whose KV lags 60 s), or at the next re-check once the record is gone from
// KV. The real worker in workerd, a real WebSocket server (ws) upstream, oidc-provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startTwoLocations, ADMIN_TOKEN, CHECK_MS } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { createAppPassword } from './support/app-passwords.mjs';
import { logoutToken, backchannelLogout } from './support/backchannel.mjs';

let s;

before(async () => {
  s = await startTwoLocations({
    authHost: true,
    backchannel: true,
    photos: { app_passwords: true },
    apps: [{ host: 'passed.localhost', websockets: 'pass' }, { host: 'family.localhost', allow_groups: ['family'] }],
  });
});
after(async () => { await s?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signedIn(user = 'alice') {
  const b = new Browser(user);
  assert.equal((await login(b, `${s.app}/`, { username: user })).status, 200);
  return b;
}

/** Opens a WebSocket through the gate as the browser `b` (its cookies), at location a or
 * b. Resolves once the app's hello arrived: { ws, hello, upgrade, messages, closed }. */
function open(b, { path = '/ws', protocols, location = 'a', host = new URL(s.app).host } = {}) {
  const port = new URL(s.app).port;
  const headers = { host, cookie: b.cookieHeader(`http://${host}/`) };
  if (location === 'b') headers['x-location'] = 'b';
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols, { headers });
  const messages = [];
  let upgrade;
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
  ws.on('upgrade', (res) => { upgrade = res; });
  return new Promise((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      messages.push({ data, isBinary });
      if (messages.length === 1) resolve({ ws, hello: JSON.parse(data.toString()), upgrade, messages, closed });
    });
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
    setTimeout(() => reject(new Error('websocket timeout')), 10_000);
  });
}

/** The next message after `n` already received. */
async function nth(conn, n) {
  for (let i = 0; i < 100 && conn.messages.length <= n; i += 1) await sleep(20);
  return conn.messages[n];
}

test('text and binary frames pass byte for byte; the subprotocol is echoed; close codes pass both ways', async () => {
  const b = await signedIn('alice');
  const conn = await open(b, { protocols: ['v2.jupyter.org', 'other'] });
  assert.equal(conn.upgrade.statusCode, 101);
  assert.equal(conn.upgrade.headers['sec-websocket-protocol'], 'v2.jupyter.org');
  assert.equal(conn.ws.protocol, 'v2.jupyter.org');
  assert.deepEqual(conn.hello, { hello: 'alice@example.com', protocol: 'v2.jupyter.org' });
  const text = 'héllo ✓ '.repeat(1000);
  conn.ws.send(text);
  const t = await nth(conn, 1);
  assert.equal(t.isBinary, false);
  assert.equal(t.data.toString('utf8'), text);
  const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
  conn.ws.send(bytes);
  const bin = await nth(conn, 2);
  assert.equal(bin.isBinary, true, 'binary stays binary');
  assert.ok(Buffer.compare(bin.data, bytes) === 0, 'byte for byte');

  // The app closes with its own code: the client sees it.
  conn.ws.send('close:4002:app done');
  const byApp = await conn.closed;
  assert.deepEqual([byApp.code, byApp.reason], [4002, 'app done']);

  // The client closes with its own code: the app sees it.
  const again = await open(b);
  const mark = s.upstream.closes.length;
  again.ws.close(4001, 'client done');
  await again.closed;
  for (let i = 0; i < 50 && s.upstream.closes.length === mark; i += 1) await sleep(20);
  assert.deepEqual(s.upstream.closes.at(-1), { code: 4001, reason: 'client done' });
});

test("an app's cookies for Portcullis on the relayed 101 are dropped; its own pass", async () => {
  const b = await signedIn('alice');
  const conn = await open(b, { path: '/ws?plant=1' });
  const cookies = conn.upgrade.headers['set-cookie'] ?? [];
  conn.ws.close();
  assert.ok(!cookies.some((c) => /portcullis/i.test(c)), `no Portcullis cookie from the app: ${cookies}`);
  assert.ok(cookies.some((c) => c.startsWith('app_pref=dark')), `the app's own cookie passes: ${cookies}`);
});

/** Asserts that the open socket is closed with 1008 within revocation_check of `revoke`
 * answering, and that a new upgrade with the same cookie is refused. */
async function closedOnRevocation(b, location, revoke, what) {
  const conn = await open(b, { location });
  const kept = new Browser(`${b.name}-kept`);
  kept.cookies = b.cookies.map((c) => ({ ...c }));
  const answered = await revoke();
  assert.ok([200, 303].includes(answered.status), `${what}: ${answered.status} ${answered.body}`);
  const revokedAt = Date.now();
  const closed = await Promise.race([conn.closed, sleep(CHECK_MS + 1500).then(() => null)]);
  assert.ok(closed, `${what}: closed within revocation_check`);
  assert.equal(closed.code, 1008, `${what}: with 1008`);
  assert.ok(closed.at - revokedAt <= CHECK_MS + 1500);
  await sleep(CHECK_MS + 200);
  await assert.rejects(open(kept, { location }), (e) => e.status === 401, `${what}: a new upgrade with the same cookie is refused`);
}

test('sign-out at a closes the socket open at b with 1008', async () => {
  const b = await signedIn('alice');
  await closedOnRevocation(b, 'b', () => b.request(`${s.app}/.portcullis/logout`, { headers: { 'sec-fetch-site': 'same-origin' } }), 'sign-out');
});

test('the admin API by sub closes every socket of the person', async () => {
  const b = await signedIn('bob');
  const admin = () => new Browser().request(`${s.app}/.portcullis/admin/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ sub: 'bob-0002' }),
  });
  await closedOnRevocation(b, 'a', admin, 'admin by sub');
});

test('every other revoke path closes the socket too: admin by session, email and all; the account page; back-channel by sub', async () => {
  const admin = (body) => () => new Browser().request(`${s.app}/.portcullis/admin/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const hashOf = async (b) => (await b.request(`${s.app}/.portcullis/me`, { headers: { accept: 'application/json' } })).json().session_id_hash;
  const bob = await signedIn('bob');
  await closedOnRevocation(bob, 'b', admin({ session: await hashOf(bob) }), 'admin by session');
  await closedOnRevocation(await signedIn('bob'), 'b', admin({ email: 'bob@example.org' }), 'admin by email');
  await closedOnRevocation(await signedIn('bob'), 'a', admin({ all: true }), 'admin, all');

  const laptop = await signedIn('carol');
  const phone = await signedIn('carol');
  const hash = await hashOf(phone);
  const page = await laptop.request(`${s.auth}/.portcullis/account`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  const csrf = page.body.match(/name="csrf" value="([\w-]+)"/)[1];
  await closedOnRevocation(phone, 'b', () => laptop.request(`${s.auth}/.portcullis/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' },
    body: `csrf=${csrf}&revoke=${hash}`,
  }), 'the account page');

  const token = await logoutToken(s.issuer, { sub: 'alice-0001' });
  await closedOnRevocation(await signedIn('alice'), 'b', () => backchannelLogout(s.app, token), 'back-channel by sub');
});

test('a socket opened with an app password is closed when it is revoked', async () => {
  const b = await signedIn('carol');
  const { id, secret } = await createAppPassword(b, s.app, { app: 'photos.localhost', label: 'Tablet', username: 'carol' });
  const port = new URL(s.app).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: new URL(s.app).host, 'portcullis-client-id': id, 'portcullis-client-secret': secret, 'x-location': 'b' } });
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  const hello = await new Promise((resolve, reject) => { ws.once('message', (d) => resolve(JSON.parse(d.toString()))); ws.once('error', reject); ws.once('unexpected-response', (_q, r) => reject(new Error(`refused ${r.statusCode}`))); });
  assert.equal(hello.hello, 'carol@example.net');
  const answered = await new Browser().request(`${s.app}/.portcullis/admin/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ app_password: id }),
  });
  assert.equal(answered.status, 200);
  const code = await Promise.race([closed, sleep(CHECK_MS + 1500).then(() => null)]);
  assert.equal(code, 1008, 'closed with 1008 within revocation_check');
});

test('with websockets = "pass" the origin\'s 101 goes straight to the client, and outlives a revocation (as documented)', async () => {
  const b = new Browser('carol');
  const host = `passed.localhost:${new URL(s.app).port}`;
  assert.equal((await login(b, `http://${host}/`, { username: 'carol' })).status, 200);
  const conn = await open(b, { host });
  assert.equal(conn.hello.protocol, null);
  await b.request(`http://${host}/.portcullis/logout`, { headers: { 'sec-fetch-site': 'same-origin' } });
  await sleep(CHECK_MS + 1000);
  assert.equal(conn.ws.readyState, WebSocket.OPEN, 'a passed socket is not the gate\'s to close');
  conn.ws.close();
});

test('at the next re-check (within a minute): a record gone from KV ends its socket, and so do claims the app\'s rules no longer admit', { timeout: 90_000 }, async () => {
  const me = async (b, origin) => (await b.request(`${origin}/.portcullis/me`, { headers: { accept: 'application/json' } })).json();
  // Revoked by a tool that reaches KV alone. (Another socket of the same person, opened
  // first and closed by its client, must not confuse the re-check.)
  const first = await open(await signedIn('carol'));
  first.ws.close();
  await first.closed;
  const carol = await signedIn('carol');
  const gone = await open(carol);
  await s.worker.kv.delete(`session:${(await me(carol, s.app)).session_id_hash}`);
  // A group removed at the issuer, as re-validation writes it into the session.
  const family = `http://family.localhost:${new URL(s.app).port}`;
  const alice = new Browser('alice');
  assert.equal((await login(alice, `${family}/`, { username: 'alice' })).status, 200);
  const ruled = await open(alice, { host: new URL(family).host });
  const key = `session:${(await me(alice, family)).session_id_hash}`;
  const record = JSON.parse(await s.worker.kv.get(key));
  assert.ok(record.identity.groups.includes('family'));
  record.identity.groups = ['guests'];
  await s.worker.kv.put(key, JSON.stringify(record));
  const [byTool, byRule] = await Promise.all([gone, ruled].map((c) => Promise.race([c.closed, sleep(65_000).then(() => null)])));
  assert.ok(byTool && byRule, 'both closed by the re-check');
  assert.equal(byTool.code, 1008);
  assert.equal(byRule.code, 1008);
  assert.equal(byRule.reason, 'no longer allowed');
});

test('a socket ends when its credential expires', { timeout: 30_000 }, async () => {
  const b = await signedIn('alice');
  const hash = (await b.request(`${s.app}/.portcullis/me`, { headers: { accept: 'application/json' } })).json().session_id_hash;
  // The session, shortened in KV to end in 4 s, as read by location b (which has not read it yet).
  const key = `session:${hash}`;
  const record = JSON.parse(await s.worker.kv.get(key));
  record.expires = Math.floor(Date.now() / 1000) + 4;
  await s.worker.kv.put(key, JSON.stringify(record));
  const conn = await open(b, { location: 'b' });
  const closed = await Promise.race([conn.closed, sleep(10_000).then(() => null)]);
  assert.ok(closed, 'closed at expiry');
  assert.deepEqual([closed.code, closed.reason], [1008, 'sign-in expired']);
});

test('an origin that is down answers a relayed upgrade with the gate\'s 502, as a passed one does', async () => {
  const b = new Browser('alice');
  const down = `http://down.localhost:${new URL(s.app).port}`;
  assert.equal((await login(b, `${down}/`, { username: 'alice' })).status, 502, 'signed in, the app is down');
  const status = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${new URL(s.app).port}/ws`, { headers: { host: new URL(down).host, cookie: b.cookieHeader(`${down}/`) } });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => resolve('error'));
  });
  assert.equal(status, 502);
});
