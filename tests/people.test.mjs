// Revocation that reaches every location: the real worker in workerd with PEOPLE bound (the
// persons' Durable Objects, class Person of the worker itself), two gates sharing them,
// the second one's KV reads lagging 60 s, and the real oidc-provider. Revoked at the first
// location through each path, the credential is refused at the second within
// revocation_check ("2s"), though its isolate cache and its KV still hold it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTwoLocations, ADMIN_TOKEN, CHECK_MS } from './support/stack.mjs';
import { ROOT } from '../stack/worker.mjs';
import { createAppPassword } from './support/app-passwords.mjs';
import { logoutToken, backchannelLogout } from './support/backchannel.mjs';
import { Browser, login } from '../stack/client.mjs';

const run = promisify(execFile);
const JSON_ACCEPT = { accept: 'application/json' };
const B = { 'x-location': 'b' };
let s;

before(async () => {
  s = await startTwoLocations({ authHost: true, backchannel: true, photos: { app_passwords: true } });
});
after(async () => { await s?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const me = (b, at = {}) => b.request(`${s.app}/.portcullis/me`, { headers: { ...JSON_ACCEPT, ...at } });

async function signedIn(user) {
  const b = new Browser(user);
  const res = await login(b, `${s.app}/`, { username: user });
  assert.equal(res.status, 200);
  return b;
}

const admin = (body) => new Browser().request(`${s.app}/.portcullis/admin/revoke`, {
  method: 'POST',
  headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...JSON_ACCEPT },
  body: JSON.stringify(body),
});

/** Asserts that location b serves `request` now (cached there) and refuses it within
 * revocation_check after `revoke` has answered at location a. */
async function refusedElsewhere(request, revoke, what) {
  assert.equal((await request(B)).status, 200, `${what}: served at b before`);
  assert.equal((await request(B)).status, 200, `${what}: and again (from b's cache)`);
  const answered = await revoke();
  assert.ok([200, 303].includes(answered.status), `${what}: the revocation answered ${answered.status} ${answered.body}`);
  const started = Date.now();
  let status = 200;
  // Bounded: at most revocation_check plus a second of slack.
  while (Date.now() - started < CHECK_MS + 1000) {
    status = (await request(B)).status;
    if (status === 401) break;
    await sleep(100);
  }
  assert.equal(status, 401, `${what}: refused at b within revocation_check`);
  assert.ok(Date.now() - started <= CHECK_MS + 1000);
}

test('without the revocation, location b keeps serving (the lagging view and cache hold)', async () => {
  const b = await signedIn('alice');
  assert.equal((await me(b, B)).status, 200);
  await sleep(CHECK_MS + 200);
  assert.equal((await me(b, B)).status, 200, 'a live session stays live after a check');
});

/** A copy of the browser's cookies: the same session on another device, or in a
 * stolen copy, which the browser's own sign-out does not clear. */
function copyOf(b) {
  const copy = new Browser(`${b.name}-copy`);
  copy.cookies = b.cookies.map((c) => ({ ...c }));
  return copy;
}

test('sign-out at a', async () => {
  const b = await signedIn('alice');
  const kept = copyOf(b);
  await refusedElsewhere((at) => me(kept, at), () => b.request(`${s.app}/.portcullis/logout`, { headers: { 'sec-fetch-site': 'same-origin' } }), 'sign-out');
});

test('the admin API at a: by session, by sub, by email, all', async () => {
  for (const [what, body] of [
    ['session', async (b) => ({ session: (await me(b)).json().session_id_hash })],
    ['sub', async () => ({ sub: 'bob-0002' })],
    ['email', async () => ({ email: 'bob@example.org' })],
    ['all', async () => ({ all: true })],
  ]) {
    const b = await signedIn('bob');
    const target = await body(b);
    await refusedElsewhere((at) => me(b, at), () => admin(target), `admin by ${what}`);
  }
});

test('the account page at a: signing out another session', async () => {
  const laptop = await signedIn('carol');
  const phone = await signedIn('carol');
  const hash = (await me(phone)).json().session_id_hash;
  const page = await laptop.request(`${s.auth}/.portcullis/account`, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' } });
  const csrf = page.body.match(/name="csrf" value="([\w-]+)"/)[1];
  await refusedElsewhere((at) => me(phone, at), () => laptop.request(`${s.auth}/.portcullis/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin' },
    body: `csrf=${csrf}&revoke=${hash}`,
  }), 'account page');
});


test('back-channel logout at a, by sub', async () => {
  const b = await signedIn('alice');
  const token = await logoutToken(s.issuer, { sub: 'alice-0001' });
  await refusedElsewhere((at) => me(b, at), () => backchannelLogout(s.app, token), 'back-channel by sub');
});

test('scripts/revoke --via the Worker (its admin API)', async () => {
  const b = await signedIn('bob');
  const port = new URL(s.app).port;
  const revoke = async () => {
    const { stdout } = await run(path.join(ROOT, 'scripts/revoke'), ['--email', 'bob@example.org', '--via', `http://photos.localhost:${port}`, '--connect-to', `127.0.0.1:${port}`], { cwd: ROOT, env: { ...process.env, ADMIN_TOKEN } });
    assert.match(stdout, /Revoked [1-9]\d* credential\(s\) through the Worker/);
    return { status: 200, body: stdout };
  };
  await refusedElsewhere((at) => me(b, at), revoke, 'scripts/revoke --via');
  const refused = await run(path.join(ROOT, 'scripts/revoke'), ['--email', 'bob@example.org', '--via', `http://photos.localhost:${port}`, '--connect-to', `127.0.0.1:${port}`], { cwd: ROOT, env: { ...process.env, ADMIN_TOKEN: 'wrong-token-0123456789abcdef0123456789' } }).then(() => null, (e) => e);
  assert.ok(refused, 'a wrong token is an error');
  assert.match(refused.stderr, /answered 40[13]/);
});

test('an app password revoked at a', async () => {
  const b = await signedIn('carol');
  const { id, secret } = await createAppPassword(b, s.app, { app: 'photos.localhost', label: 'Phone', username: 'carol' });
  const use = (at) => new Browser().request(`${s.app}/api/x`, { headers: { 'portcullis-client-id': id, 'portcullis-client-secret': secret, ...JSON_ACCEPT, ...at } });
  await refusedElsewhere(use, () => admin({ app_password: id }), 'app password');
});

test('a location whose isolate has a session cached asks the object at most once per revocation_check', async () => {
  const b = await signedIn('carol');
  const first = await me(b, B);
  assert.equal(first.status, 200);
  const hash = first.json().session_id_hash;
  // The probe's line for that first read comes through workerd's stdout on its own time:
  // wait for it (bounded), so that it is not counted among the ten requests'.
  const readAtB = (o) => o.kv === 'get' && o.location === 'b' && o.key === `session:${hash}`;
  for (let i = 0; i < 50 && !s.worker.kvOps(0).some(readAtB); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(s.worker.kvOps(0).some(readAtB), 'the first request at b read the session');
  const mark = s.worker.lines.length;
  const started = Date.now();
  for (let i = 0; i < 10; i++) assert.equal((await me(b, B)).status, 200);
  const reads = s.worker.kvOps(mark).filter((o) => o.kv === 'get');
  assert.equal(reads.length, 0, `no KV reads either: ${JSON.stringify(reads)}`);
  assert.ok(Date.now() - started < CHECK_MS, 'the ten requests fell within one revocation_check');
  assert.ok(!s.worker.lines.slice(mark).some((l) => l.includes('person_object_unreachable')));
});
