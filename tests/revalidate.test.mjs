// Re-validation against the issuer (revalidate_every): refresh tokens from the real
// oidc-provider (rotated on every use, as Pocket ID does), claim changes picked up, a
// revoked grant ending the session, and concurrent requests not killing it. App passwords
// are re-validated alike, each with its own grant.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { createAppPassword } from './support/app-passwords.mjs';

const JSON_ACCEPT = { accept: 'application/json' };
const EVERY = 30;
let s;
let browsers;
const appPasswords = {};

before(async () => {
  s = await startStack({ authHost: true, config: { revalidate_every: `${EVERY}s` }, photos: { app_passwords: true } });
  // Sign in now; the sessions fall due for re-validation after EVERY seconds.
  browsers = {};
  for (const user of ['alice', 'bob', 'carol']) {
    const b = new Browser(user);
    const res = await login(b, `${s.app}/`, { username: user });
    assert.equal(res.status, 200);
    browsers[user] = b;
  }
  // Through the issuer even after a recent login: each gets a grant of its own.
  for (const user of ['alice', 'bob']) {
    appPasswords[user] = await createAppPassword(browsers[user], s.app, { app: 'photos.localhost', label: `${user}'s phone`, lifetime: '1d' });
  }
  await new Promise((r) => setTimeout(r, (EVERY + 1) * 1000));
});
after(async () => { await s?.stop(); });

const me = (b) => b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });

async function until(check, what, seconds = 10) {
  for (let i = 0; i < seconds * 10; i += 1) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('the refresh token is requested and never stored in the clear', async () => {
  const keys = (await s.worker.kv.list({ prefix: 'session:' })).keys;
  assert.ok(keys.length >= 3);
  for (const k of keys) {
    const record = JSON.parse(await s.worker.kv.get(k.name));
    assert.ok(record.refresh, 'an encrypted refresh token is kept');
    assert.doesNotMatch(JSON.stringify(record), /"refresh_token"/);
  }
  assert.ok(s.issuerLog.some((l) => l.startsWith('grant authorization_code')));
});

test('a due session is served at once and re-validated in the background; new claims apply', async () => {
  s.issuer.setClaims('alice', { groups: ['family', 'admins', 'photographers'] });
  const first = await me(browsers.alice);
  assert.equal(first.status, 200, 'served without waiting for the issuer');
  await until(async () => (await me(browsers.alice)).json().groups?.includes('photographers'), 'the new group');
  assert.ok(s.issuerLog.some((l) => l === 'grant refresh_token alice-0001'), s.issuerLog.join(' | '));
});

test('a refresh refused by the issuer (grant revoked) ends the session', async () => {
  await s.issuer.revokeGrants('bob');
  const mark = s.worker.lines.length;
  await me(browsers.bob); // triggers the re-validation
  await until(async () => (await me(browsers.bob)).status === 401, 'the session to be refused');
  const line = s.worker.lines.slice(mark).find((l) => l.includes('"event":"revalidation_failed"'));
  assert.ok(line, 'audit line');
  const audit = JSON.parse(line);
  assert.equal(audit.sub, 'bob-0002');
  assert.match(audit.reason, /invalid_grant/);
  const nav = await browsers.bob.request(`${s.app}/`, { headers: { accept: 'text/html' } });
  assert.equal(nav.status, 303, 'and the user is sent to login');
});

test('concurrent requests during a rotation do not kill the session', async () => {
  const mark = s.issuerLog.length;
  const before = s.issuerLog.filter((l) => l === 'grant refresh_token carol-0003').length;
  const results = await Promise.all(Array.from({ length: 12 }, () => me(browsers.carol)));
  assert.deepEqual(results.map((r) => r.status), Array(12).fill(200));
  await new Promise((r) => setTimeout(r, 1500));
  const burst = await Promise.all(Array.from({ length: 12 }, () => me(browsers.carol)));
  assert.deepEqual(burst.map((r) => r.status), Array(12).fill(200), 'still signed in');
  const refreshes = s.issuerLog.filter((l) => l === 'grant refresh_token carol-0003').length - before;
  assert.equal(refreshes, 1, 'one refresh for the whole burst');
  assert.ok(!s.issuerLog.slice(mark).some((l) => l.startsWith('grant error')), s.issuerLog.slice(mark).join(' | '));
});

const useAppPassword = ({ id, secret }) => new Browser('phone').request(`${s.app}/api/x`, {
  headers: { ...JSON_ACCEPT, 'portcullis-client-id': id, 'portcullis-client-secret': secret },
  cookies: false,
});

test('a due app password is served and re-validated in the background with its own refresh token', async () => {
  const key = `app-password:${appPasswords.alice.id}`;
  const before = JSON.parse(await s.worker.kv.get(key));
  assert.ok(before.refresh, 'its own refresh token, encrypted');
  assert.equal((await useAppPassword(appPasswords.alice)).status, 200);
  await until(async () => JSON.parse(await s.worker.kv.get(key)).validated > before.validated, 'the re-validation');
  const after = JSON.parse(await s.worker.kv.get(key));
  assert.notEqual(after.refresh, before.refresh, 'the rotated refresh token is kept');
  assert.equal((await useAppPassword(appPasswords.alice)).status, 200);
});

test('a refused re-validation (grant revoked at the issuer) ends the app password', async () => {
  await s.issuer.revokeGrants('bob');
  const mark = s.worker.lines.length;
  await useAppPassword(appPasswords.bob); // served, and triggers the re-validation
  await until(async () => (await useAppPassword(appPasswords.bob)).status === 401, 'the app password to be refused');
  const line = s.worker.lines.slice(mark).find((l) => l.includes('"event":"app_password_revoked"'));
  assert.ok(line, 'audit line');
  const audit = JSON.parse(line);
  assert.equal(audit.by, 'revalidation');
  assert.match(audit.reason, /invalid_grant/);
  assert.equal(await s.worker.kv.get(`app-password:${appPasswords.bob.id}`), null);
});
