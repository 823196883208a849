// Session lifecycle: the user's sessions page, the owner's admin API, logout driven by the
// issuer (back-channel), revocation taking effect on the very next request, and the audit
// log. The real worker, the real oidc-provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SignJWT, importJWK } from 'jose';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';

const JSON_ACCEPT = { accept: 'application/json' };
const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' };
let s;

before(async () => {
  s = await startStack({
    backchannel: true,
    secrets: { ADMIN_TOKEN },
    apps: [{ host: 'family.localhost', allow_groups: ['family'] }],
  });
});
after(async () => { await s?.stop(); });

async function signedIn(user = 'alice', userAgent = 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0') {
  const b = new Browser(user, { 'user-agent': userAgent });
  const res = await login(b, `${s.app}/`, { username: user });
  assert.equal(res.status, 200);
  return b;
}

const me = (b) => b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
const hashOf = async (b) => (await me(b)).json().session_id_hash;
const admin = (path, { method = 'GET', body, token = ADMIN_TOKEN } = {}) => new Browser().request(`${s.app}/.portcullis/admin/${path}`, {
  method,
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...JSON_ACCEPT },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const auditLines = (mark, event) => s.worker.lines.slice(mark).filter((l) => l.includes('"audit":true') && l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l));
const settle = () => new Promise((r) => setTimeout(r, 60));

test('a login writes the session and its index keys; /me names the session by its hash', async () => {
  const mark = s.worker.lines.length;
  const b = await signedIn('alice');
  const hash = await hashOf(b);
  assert.match(hash, /^[\w-]{43}$/);
  await settle();
  const puts = s.worker.kvOps(mark).filter((o) => o.kv === 'put').map((o) => o.key);
  assert.ok(puts.includes(`session:${hash}`));
  assert.ok(puts.some((k) => k.startsWith('user:') && k.endsWith(`:${hash}`)), 'user index');
  assert.ok(puts.some((k) => k.startsWith('sid:') && k.endsWith(`:${hash}`)), 'issuer-session index');
  assert.ok(!puts.some((k) => k.includes('alice')), 'no raw sub in key names');
  const [login] = auditLines(mark, 'login');
  assert.equal(login.sub, 'alice-0001');
  assert.equal(login.session, hash);
  assert.equal(login.user_agent, 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0');
  assert.ok(!JSON.stringify(login).includes(b.cookie('__Host-portcullis-session')), 'never the raw session cookie');
});

test('sessions page: list, sign out another session (it is refused at once), sign out everywhere else', async () => {
  const laptop = await signedIn('carol', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0');
  const phone = await signedIn('carol', 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1');
  const phoneHash = await hashOf(phone);
  const page = await laptop.request(`${s.app}/.portcullis/account`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200);
  assert.match(page.body, /Firefox on Linux/);
  assert.match(page.body, /Safari on iOS/);
  assert.match(page.body, /This device/);
  assert.equal((page.body.match(/<tr data-session=/g) || []).length, 2);
  const csrf = page.body.match(/name="csrf" value="([\w-]+)"/)[1];

  const forged = await laptop.request(`${s.app}/.portcullis/sessions`, { method: 'POST', headers: FORM, body: `csrf=forged&revoke=${phoneHash}` });
  assert.equal(forged.status, 403);
  assert.equal((await me(phone)).status, 200, 'a forged form revokes nothing');

  const mark = s.worker.lines.length;
  const out = await laptop.request(`${s.app}/.portcullis/sessions`, { method: 'POST', headers: FORM, body: `csrf=${csrf}&revoke=${phoneHash}` });
  assert.equal(out.status, 303);
  assert.equal((await me(phone)).status, 401, 'the very next request of the revoked session is refused');
  assert.equal((await me(laptop)).status, 200);
  const after = await laptop.request(`${s.app}/.portcullis/account`, { headers: { accept: 'text/html' } });
  assert.doesNotMatch(after.body, /Safari on iOS/, 'and it is gone from the list');
  await settle();
  const [revoke] = auditLines(mark, 'revoke');
  assert.equal(revoke.by, 'user');
  assert.equal(revoke.session, phoneHash);

  const tablet = await signedIn('carol', 'Mozilla/5.0 (Linux; Android 15) Chrome/140.0');
  const desk = await signedIn('carol', 'curl/8.5.0');
  const everywhere = await laptop.request(`${s.app}/.portcullis/sessions`, { method: 'POST', headers: FORM, body: `csrf=${csrf}&others=1` });
  assert.equal(everywhere.status, 303);
  assert.equal((await me(tablet)).status, 401);
  assert.equal((await me(desk)).status, 401);
  assert.equal((await me(laptop)).status, 200, 'this device stays signed in');
});

test('account page needs a session: navigation goes to login and back, API gets 401; the old address leads there', async () => {
  const anon = new Browser();
  const nav = await anon.request(`${s.app}/.portcullis/account`, { headers: { accept: 'text/html' } });
  assert.equal(nav.status, 303);
  assert.ok(nav.location.startsWith(s.issuer.url), nav.location);
  const b = new Browser();
  const done = await login(b, `${s.app}/.portcullis/account`);
  assert.equal(done.url, `${s.app}/.portcullis/account`);
  assert.match(done.body, /Your account/);
  assert.equal((await anon.request(`${s.app}/.portcullis/account`, { headers: JSON_ACCEPT })).status, 401);
  const old = await b.follow(`${s.app}/.portcullis/sessions`);
  assert.equal(old.url, `${s.app}/.portcullis/account`);
  assert.match(old.body, /Your account/);
});

test('admin API: wrong tokens get the same 401 whatever is asked', async () => {
  const a = await admin('sessions?email=alice@example.com', { token: 'wrong' });
  const b = await admin('sessions?email=nobody@example.com', { token: 'wrong' });
  const c = await new Browser().request(`${s.app}/.portcullis/admin/sessions?email=alice@example.com`, { headers: JSON_ACCEPT });
  for (const r of [a, b, c]) {
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer');
  }
  assert.equal(a.body, b.body);
  assert.equal(a.body, c.body);
  const d = await admin('revoke', { method: 'POST', body: { all: true }, token: `${ADMIN_TOKEN}x` });
  assert.equal(d.status, 401);
});

test('admin API: list by email or sub, revoke by session, sub, email, or all', async () => {
  const one = await signedIn('bob', 'curl/8.5.0');
  const two = await signedIn('bob');
  const byEmail = await admin('sessions?email=BOB@example.org');
  assert.equal(byEmail.status, 200);
  const sessions = byEmail.json().sessions;
  assert.ok(sessions.length >= 2);
  for (const x of sessions) {
    assert.deepEqual(Object.keys(x).sort(), ['created', 'email', 'expires', 'host', 'session_id_hash', 'sub', 'user_agent']);
    assert.equal(x.sub, 'bob-0002');
  }
  assert.deepEqual((await admin('sessions?sub=bob-0002')).json().sessions.map((x) => x.session_id_hash).sort(), sessions.map((x) => x.session_id_hash).sort());
  assert.deepEqual((await admin('sessions?email=nobody@example.com')).json(), { sessions: [] });
  assert.equal((await admin('sessions')).status, 400);

  const mark = s.worker.lines.length;
  const first = await admin('revoke', { method: 'POST', body: { session: await hashOf(one) } });
  assert.deepEqual(first.json(), { revoked: 1 });
  assert.equal((await me(one)).status, 401, 'refused on the very next request');
  assert.equal((await me(two)).status, 200);
  const rest = await admin('revoke', { method: 'POST', body: { email: 'bob@example.org' } });
  assert.ok(rest.json().revoked >= 1);
  assert.equal((await me(two)).status, 401);
  await settle();
  assert.ok(auditLines(mark, 'revoke').every((l) => l.by === 'admin'));
  assert.ok(auditLines(mark, 'revoke').length >= 2);

  const three = await signedIn('bob');
  assert.deepEqual((await admin('revoke', { method: 'POST', body: { sub: 'bob-0002' } })).json(), { revoked: 1 });
  assert.equal((await me(three)).status, 401);

  for (const body of [{}, { sub: 'x', email: 'y' }, { colour: 'blue' }]) {
    assert.equal((await admin('revoke', { method: 'POST', body })).status, 400, JSON.stringify(body));
  }
  const everyone = await signedIn('alice');
  const all = await admin('revoke', { method: 'POST', body: { all: true } });
  assert.ok(all.json().revoked >= 1);
  assert.equal((await me(everyone)).status, 401);
});

test('back-channel logout from the issuer ends the matching session at once', async () => {
  const b = await signedIn('alice');
  const other = await signedIn('alice');
  // The user signs out at the issuer itself (not through Portcullis).
  const end = await b.follow(`${s.issuer.url}/session/end`);
  const xsrf = end.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
  assert.ok(xsrf, 'issuer logout form');
  await b.request(`${s.issuer.url}/session/end/confirm`, { method: 'POST', headers: FORM, body: new URLSearchParams({ xsrf, logout: 'yes' }).toString() });
  await settle();
  assert.ok(s.issuerLog.some((l) => l.startsWith('backchannel ok')), `issuer delivered the logout token: ${s.issuerLog.join(' | ')}`);
  assert.equal((await me(b)).status, 401, 'that session is gone');
  assert.equal((await me(other)).status, 200, 'another issuer session (other sid) is not');
  assert.ok(auditLines(0, 'backchannel_logout').length >= 1);
});

async function logoutToken(claims, { omit = [] } = {}) {
  const jwk = s.issuer.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: s.issuer.url, aud: 'portcullis', iat: now, exp: now + 120, jti: `jti-${Math.random()}`, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims };
  for (const k of omit) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' }).sign(await importJWK(jwk, jwk.alg));
}

const backchannel = (token) => new Browser().request(`${s.app}/.portcullis/backchannel-logout`, {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }).toString(),
});

test('back-channel logout tokens: replayed jti, wrong aud, nonce, unknown sid, sub only', async () => {
  const unknownSid = await backchannel(await logoutToken({ sid: 'no-such-issuer-session', sub: 'alice-0001' }));
  assert.equal(unknownSid.status, 200, 'nothing to end is still a success');
  assert.equal(unknownSid.headers['cache-control'], 'no-store');

  const token = await logoutToken({ sid: 'some-sid' });
  assert.equal((await backchannel(token)).status, 200);
  const replay = await backchannel(token);
  assert.equal(replay.status, 400);
  assert.equal(replay.json().error, 'invalid_request');
  assert.match(replay.json().error_description, /jti/);
  assert.equal(replay.headers['cache-control'], 'no-store');

  for (const [why, t] of [
    ['wrong aud', await logoutToken({ sid: 'x', aud: 'someone-else' })],
    ['nonce', await logoutToken({ sid: 'x', nonce: 'n' })],
    ['no events', await logoutToken({ sid: 'x' }, { omit: ['events'] })],
    ['no sid or sub', await logoutToken({})],
    ['no jti', await logoutToken({ sid: 'x' }, { omit: ['jti'] })],
    ['foreign issuer', await logoutToken({ sid: 'x', iss: 'https://evil.example.org' })],
    ['not a JWT', 'garbage'],
  ]) {
    const r = await backchannel(t);
    assert.equal(r.status, 400, why);
    assert.equal(r.json().error, 'invalid_request', why);
  }
  assert.equal((await new Browser().request(`${s.app}/.portcullis/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' })).status, 400);

  const a = await signedIn('alice');
  const b = await signedIn('alice');
  const bySub = await backchannel(await logoutToken({ sub: 'alice-0001' }));
  assert.equal(bySub.status, 200);
  assert.equal((await me(a)).status, 401, 'sub alone: every session of the user');
  assert.equal((await me(b)).status, 401);
});

test('audit log: denied by policy, with host, IP and user agent', async () => {
  const b = new Browser('bob');
  await login(b, `${s.at('family.localhost')}/`, { username: 'bob' });
  await settle(); // the login's own lines (its last page was a 403 too) are in before the mark
  const mark = s.worker.lines.length;
  const res = await b.request(`${s.at('family.localhost')}/`, { headers: { accept: 'text/html', 'cf-connecting-ip': '203.0.113.7', 'user-agent': 'TestAgent/1.0' } });
  assert.equal(res.status, 403);
  await settle();
  const [denied] = auditLines(mark, 'denied');
  assert.equal(denied.host, 'family.localhost');
  assert.equal(denied.sub, 'bob-0002');
  assert.equal(denied.ip, '203.0.113.7');
  assert.equal(denied.user_agent, 'TestAgent/1.0');
  assert.match(denied.session, /^[\w-]{43}$/);
});

test('the logout from the foundation also removes the index keys', async () => {
  const b = await signedIn('carol');
  const hash = await hashOf(b);
  const mark = s.worker.lines.length;
  await b.request(`${s.app}/.portcullis/logout`, { headers: { accept: 'text/html', 'sec-fetch-site': 'same-origin' } });
  await settle();
  const deletes = s.worker.kvOps(mark).filter((o) => o.kv === 'delete').map((o) => o.key);
  assert.ok(deletes.includes(`session:${hash}`));
  assert.ok(deletes.some((k) => k.startsWith('user:') && k.endsWith(hash)));
  assert.ok(deletes.some((k) => k.startsWith('sid:') && k.endsWith(hash)));
  const list = await s.worker.kv.list();
  assert.ok(!list.keys.some((k) => k.name.endsWith(hash) && !k.name.startsWith('revoked:')), 'nothing of the session is left in KV');
  assert.ok(list.keys.some((k) => k.name === `revoked:${hash}`), 'but its tombstone, so nothing writes it back');
  void createHash;
});
