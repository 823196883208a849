// App passwords against the real worker and the real oidc-provider: created on the account
// page (at once after a recent login, else through the issuer first), used as the header
// pair and as HTTP Basic, refused without a KV operation where that is promised, revoked
// by the person, the owner's admin API and back-channel logout, and subject to access
// rules that change. (The browser test creates one in chromium too.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, importJWK } from 'jose';
import { startStack } from './support/stack.mjs';
import { Browser, login, submitLogin } from '../stack/client.mjs';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' };
const JSON_ACCEPT = { accept: 'application/json' };
let s;

before(async () => {
  s = await startStack({
    authHost: true,
    requireAuthTime: true,
    kvPersist: true,
    secrets: { ADMIN_TOKEN },
    photos: { app_passwords: true, app_password_paths: ['/api/**'] },
    apps: [
      { host: 'sonarr.localhost', app_passwords: true, allow_groups: ['family'] },
      { host: 'open.localhost' },
    ],
    // Every request reads KV, so tests can change records underneath.
    config: { session_cache: '0s' },
  });
});
after(async () => { await s?.stop(); });

const url = (host, path = '/') => `${s.at(host)}${path}`;
const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));
const audit = (mark, event) => s.worker.lines.slice(mark)
  .filter((l) => l.includes('"audit":true') && l.includes(`"event":"${event}"`))
  .map((l) => JSON.parse(l));

/** Polls (bounded) until `check` returns something truthy. */
async function eventually(check, what, tries = 50) {
  for (let i = 0; i < tries; i += 1) {
    const value = await check();
    if (value) return value;
    await settle(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function signedIn(user = 'alice') {
  const b = new Browser(user);
  const done = await login(b, url('photos.localhost', '/'), { username: user });
  assert.equal(done.status, 200);
  return b;
}

async function csrfOf(b) {
  const page = await b.request(url('auth.localhost', '/.portcullis/account'), { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200, page.body);
  return page.body.match(/name="csrf" value="([\w-]+)"/)[1];
}

function createRequest(b, csrf, { app, label, lifetime = '30d' }) {
  return b.request(url('auth.localhost', '/.portcullis/app-passwords'), {
    method: 'POST',
    headers: FORM,
    body: new URLSearchParams({ app, label, lifetime, csrf }).toString(),
  });
}

function shown(page) {
  const id = page.body.match(/data-client-id>([^<]+)</)?.[1];
  const secret = page.body.match(/data-secret>([^<]+)</)?.[1];
  assert.ok(id && secret, `the page shows the credentials: ${page.status} ${page.body.slice(0, 400)}`);
  return { id, secret };
}

/** Creates an app password directly (the login is recent). */
async function create(b, app, label) {
  const page = await createRequest(b, await csrfOf(b), { app, label });
  assert.equal(page.status, 200, page.body);
  return shown(page);
}

/** A request as a phone app makes it (no cookies, JSON). */
function asApp(target, headers = {}) {
  return new Browser('app').request(target, { headers: { ...JSON_ACCEPT, ...headers }, cookies: false });
}
const pair = ({ id, secret }) => ({ 'portcullis-client-id': id, 'portcullis-client-secret': secret });
const basic = ({ id, secret }) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

async function accountJson(b) {
  const r = await b.request(url('auth.localhost', '/.portcullis/account'), { headers: JSON_ACCEPT });
  assert.equal(r.status, 200);
  return r.json();
}

test('created after a recent login; used as the header pair and as Basic; the app sees the person and the label', async () => {
  const alice = await signedIn();
  const mark = s.worker.lines.length;
  const creds = await create(alice, 'sonarr.localhost', 'nzb360 on Pixel 8');
  assert.match(creds.id, /^ap_[0-9a-f]{24}$/);

  const viaPair = await asApp(url('sonarr.localhost', '/api/v3/queue'), pair(creds));
  assert.equal(viaPair.status, 200, viaPair.body);
  const seen = viaPair.json().headers;
  assert.equal(seen['x-auth-request-user'], 'alice@example.com');
  assert.equal(seen['x-auth-request-credential'], 'nzb360 on Pixel 8');
  assert.equal(seen['x-auth-request-groups'], 'family,admins');
  assert.equal(seen['portcullis-client-id'], undefined, 'consumed headers are stripped');
  assert.equal(seen['portcullis-client-secret'], undefined);

  const viaBasic = await asApp(url('sonarr.localhost', '/'), basic(creds));
  assert.equal(viaBasic.status, 200, viaBasic.body);
  assert.equal(viaBasic.json().headers.authorization, undefined, 'Basic is consumed');
  assert.equal(viaBasic.json().headers['remote-user'], 'alice@example.com');

  // KV holds its hash, never the secret.
  const keys = (await s.worker.kv.list()).keys.map((k) => k.name);
  for (const key of keys) {
    const value = await s.worker.kv.getWithMetadata(key);
    assert.ok(!JSON.stringify(value).includes(creds.secret), `the secret is not stored under ${key}`);
  }

  // Listed on the account page (never the secret), with when it was last used.
  const listed = await eventually(async () => {
    const { app_passwords: list } = await accountJson(alice);
    return list.find((p) => p.id === creds.id && p.last_used);
  }, 'last_used to be recorded');
  assert.equal(listed.label, 'nzb360 on Pixel 8');
  assert.equal(listed.app, 'sonarr.localhost');
  assert.ok(listed.expires > listed.created + 29 * 86400);
  assert.equal(typeof listed.created, 'number');
  const page = await alice.request(url('auth.localhost', '/.portcullis/account'), { headers: { accept: 'text/html' } });
  assert.match(page.body, /nzb360 on Pixel 8/);
  assert.ok(!page.body.includes(creds.secret));

  await settle();
  const [created] = audit(mark, 'app_password_created');
  assert.equal(created.app_password, creds.id);
  assert.equal(created.sub, 'alice-0001');
  assert.equal(audit(mark, 'app_password_used').length, 1, 'first use of the day only');
});

test('refusals: wrong secret, unknown ID, another app, outside the paths, expired: 401 JSON, and no KV operation where promised', async () => {
  const alice = await signedIn();
  const creds = await create(alice, 'photos.localhost', 'Immich on Pixel 8');
  const wrong = { id: creds.id, secret: `${creds.secret.slice(0, 20)}${creds.secret[20] === 'x' ? 'y' : 'x'}${creds.secret.slice(21)}` };
  const cases = [
    ['a wrong secret', url('photos.localhost', '/api/assets'), pair(wrong)],
    ['a wrong secret via Basic', url('photos.localhost', '/api/assets'), basic({ id: creds.id, secret: 'guess' })],
    ['an unknown ID', url('photos.localhost', '/api/assets'), pair({ id: 'ap_0123456789abcdef01234567', secret: creds.secret })],
    ['another app', url('sonarr.localhost', '/api/v3/queue'), pair(creds)],
    ['an app without app passwords', url('open.localhost', '/'), pair(creds)],
    ['outside app_password_paths', url('photos.localhost', '/albums'), pair(creds)],
  ];
  const mark = s.worker.lines.length;
  for (const [what, target, headers] of cases) {
    // Even as a browser navigation: never a redirect to the issuer.
    const r = await new Browser().request(target, { headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', ...headers }, cookies: false });
    assert.equal(r.status, 401, `${what}: ${r.body}`);
    assert.equal(r.location, undefined, what);
    assert.match(r.headers['content-type'], /application\/json/, what);
  }
  await settle(300);
  assert.deepEqual(s.worker.kvOps(mark), [], 'none of them cost a KV operation');
  assert.ok(audit(mark, 'app_password_refused').length >= cases.length);

  // Expired: the record says so (KV would drop it at the same moment).
  const old = await create(alice, 'photos.localhost', 'old tablet');
  const key = `app-password:${old.id}`;
  const record = JSON.parse(await s.worker.kv.get(key));
  record.expires = Math.floor(Date.now() / 1000) - 1;
  await s.worker.kv.put(key, JSON.stringify(record));
  const expired = await asApp(url('photos.localhost', '/api/assets'), pair(old));
  assert.equal(expired.status, 401);
  assert.equal(expired.json().error, 'app_password_expired');
});

test('an old login is sent to the issuer first (prompt=login, max_age) and its auth_time is checked', async () => {
  const alice = await signedIn();
  const { session_id_hash: hash } = (await alice.request(url('photos.localhost', '/.portcullis/me'), { headers: JSON_ACCEPT })).json();
  const key = `session:${hash}`;
  const session = JSON.parse(await s.worker.kv.get(key));
  assert.ok(session.auth_time, 'the session keeps auth_time from the ID token');
  session.auth_time -= 3600;
  await s.worker.kv.put(key, JSON.stringify(session));

  const start = await createRequest(alice, await csrfOf(alice), { app: 'photos.localhost', label: 'Immich' });
  assert.equal(start.status, 303);
  const authorize = new URL(start.location);
  assert.equal(authorize.origin, s.issuer.url);
  assert.equal(authorize.searchParams.get('prompt'), 'login');
  assert.equal(authorize.searchParams.get('max_age'), '600');
  assert.ok(!(await s.worker.kv.list({ prefix: 'app-password:' })).keys.some((k) => k.name.includes('Immich')));
  // The issuer asks again (its session is fresh, but prompt=login), then the page shows it.
  const atIssuer = await alice.follow(start.location);
  assert.match(atIssuer.body, /\/interaction\//, 'the issuer shows its login form again');
  const done = await submitLogin(alice, atIssuer);
  assert.equal(done.status, 200, done.body.slice(0, 300));
  const creds = shown(done);
  assert.equal((await asApp(url('photos.localhost', '/api/assets'), pair(creds))).status, 200);

  // Someone else's login cannot complete alice's request.
  session.auth_time -= 3600;
  await s.worker.kv.put(key, JSON.stringify(session));
  const again = await createRequest(alice, await csrfOf(alice), { app: 'photos.localhost', label: 'Other' });
  // Carol signs in at the issuer (in her own browser); the code comes back to alice's.
  const carol = new Browser('carol');
  const form = await carol.follow(again.location);
  const action = new URL(form.body.match(/action="([^"]+)"/)[1].replace(/&amp;/g, '&'), form.url).toString();
  let res = await carol.request(action, { method: 'POST', headers: FORM, body: 'username=carol&password=carol' });
  for (let i = 0; i < 10 && !res.location.includes('/.portcullis/callback'); i += 1) res = await carol.request(res.location);
  const other = await alice.request(res.location, { headers: { accept: 'text/html' } });
  assert.equal(other.status, 403, other.body.slice(0, 300));
  assert.match(other.body, /fresh sign-in by the same person/);
});

test('the form: CSRF, apps that take app passwords and admit the person, label, lifetime', async () => {
  const bob = await signedIn('bob'); // not in family: sonarr does not admit him
  const csrf = await csrfOf(bob);
  const page = await bob.request(url('auth.localhost', '/.portcullis/account'), { headers: { accept: 'text/html' } });
  assert.match(page.body, /<option value="photos.localhost">/);
  assert.doesNotMatch(page.body, /<option value="sonarr.localhost">/, 'only apps that admit him are offered');
  const cases = [
    [{ app: 'sonarr.localhost', label: 'x', csrf }, 400],
    [{ app: 'open.localhost', label: 'x', csrf }, 400],
    [{ app: 'photos.localhost', label: '', csrf }, 400],
    [{ app: 'photos.localhost', label: 'x', lifetime: '91d', csrf }, 400],
    [{ app: 'photos.localhost', label: 'x', csrf: 'forged' }, 403],
  ];
  for (const [fields, status] of cases) {
    const r = await bob.request(url('auth.localhost', '/.portcullis/app-passwords'), {
      method: 'POST', headers: FORM, body: new URLSearchParams({ lifetime: '30d', ...fields }).toString(),
    });
    assert.equal(r.status, status, `${JSON.stringify(fields)}: ${r.body.slice(0, 200)}`);
  }
  assert.equal((await accountJson(bob)).app_passwords.length, 0);
  const anon = await new Browser().request(url('auth.localhost', '/.portcullis/app-passwords'), {
    method: 'POST', headers: FORM, body: 'app=photos.localhost&label=x&csrf=x',
  });
  assert.equal(anon.status, 401);
});

test('revoked by the person, by the admin API (by ID and by sub) and by back-channel logout by sub: the very next request is refused', async () => {
  const carol = await signedIn('carol'); // verified email, no groups: photos only
  const use = (creds) => asApp(url('photos.localhost', '/api/x'), pair(creds));

  // By the person, on their page.
  const mine = await create(carol, 'photos.localhost', 'mine');
  assert.equal((await use(mine)).status, 200);
  const before = s.worker.lines.length;
  const out = await carol.request(url('auth.localhost', '/.portcullis/app-passwords/revoke'), {
    method: 'POST', headers: FORM, body: new URLSearchParams({ id: mine.id, csrf: await csrfOf(carol) }).toString(),
  });
  assert.equal(out.status, 303);
  assert.equal((await use(mine)).status, 401);
  assert.equal(await s.worker.kv.get(`app-password:${mine.id}`), null);
  await settle();
  assert.equal(audit(before, 'app_password_revoked')[0].by, 'user');

  // Another person cannot revoke it.
  const kept = await create(carol, 'photos.localhost', 'kept');
  const alice = await signedIn('alice');
  const refused = await alice.request(url('auth.localhost', '/.portcullis/app-passwords/revoke'), {
    method: 'POST', headers: FORM, body: new URLSearchParams({ id: kept.id, csrf: await csrfOf(alice) }).toString(),
  });
  assert.equal(refused.status, 400);
  assert.equal((await use(kept)).status, 200);

  // By the owner: listed by sub and by email, revoked by ID.
  const admin = (path, body) => new Browser().request(url('photos.localhost', `/.portcullis/admin/${path}`), {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...JSON_ACCEPT },
    body: body && JSON.stringify(body),
  });
  const bySub = (await admin('app-passwords?sub=carol-0003')).json().app_passwords;
  assert.ok(bySub.some((p) => p.id === kept.id && p.label === 'kept'));
  const byEmail = (await admin('app-passwords?email=CAROL@example.net')).json().app_passwords;
  assert.ok(byEmail.some((p) => p.id === kept.id));
  assert.deepEqual((await admin('revoke', { app_password: kept.id })).json(), { revoked: 1 });
  assert.equal((await use(kept)).status, 401);

  // By sub through the admin API: sessions and app passwords alike.
  const two = await create(carol, 'photos.localhost', 'two');
  const mark = s.worker.lines.length;
  const r = (await admin('revoke', { sub: 'carol-0003' })).json();
  assert.ok(r.revoked >= 2, JSON.stringify(r));
  await settle();
  assert.ok(audit(mark, 'app_password_revoked').some((l) => l.app_password === two.id && l.by === 'admin'));
  assert.ok(audit(mark, 'revoke').some((l) => l.by === 'admin'), 'and her sessions');
  assert.equal((await use(two)).status, 401);

  // Back-channel logout: by sid it stays, by sub it ends.
  const carol2 = await signedIn('carol');
  const three = await create(carol2, 'photos.localhost', 'three');
  assert.equal((await backchannel(await logoutToken({ sid: 'some-issuer-session', sub: 'carol-0003' }))).status, 200);
  assert.equal((await use(three)).status, 200, 'a logout of one issuer session leaves app passwords');
  assert.equal((await backchannel(await logoutToken({ sub: 'carol-0003' }))).status, 200);
  assert.equal((await use(three)).status, 401, 'a logout of the user ends them');
});

async function logoutToken(claims) {
  const jwk = s.issuer.keys[0];
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: s.issuer.url, aud: 'portcullis', iat: now, exp: now + 120, jti: `jti-${Math.random()}`, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'logout+jwt' }).sign(await importJWK(jwk, jwk.alg));
}

const backchannel = (token) => new Browser().request(url('photos.localhost', '/.portcullis/backchannel-logout'), {
  method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }).toString(),
});

test('a change of the access rules applies to existing app passwords at once', async () => {
  const alice = await signedIn();
  const creds = await create(alice, 'sonarr.localhost', 'nzb360');
  assert.equal((await asApp(url('sonarr.localhost', '/api'), pair(creds))).status, 200);
  const changed = structuredClone(s.config);
  changed.apps.find((a) => a.host === 'sonarr.localhost').allow_groups = ['guests'];
  await s.redeploy(changed);
  const denied = await asApp(url('sonarr.localhost', '/api'), pair(creds));
  assert.equal(denied.status, 403, denied.body);
});
