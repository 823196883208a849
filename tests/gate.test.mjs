// The gate end to end: the built worker in workerd (Miniflare), the local oidc-provider
// issuer, and a real upstream app. Each test names the behaviour it guards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';
import { startStack, SESSION_SECRET } from './support/stack.mjs';
import { Browser, login, submitLogin, signSessionId } from '../stack/client.mjs';

let s;
before(async () => { s = await startStack(); });
after(async () => { await s?.stop(); });

const JSON_ACCEPT = { accept: 'application/json' };
const SESSION = '__Host-portcullis-session';

async function signedIn(user = 'alice') {
  const b = new Browser(user);
  const res = await login(b, `${s.app}/`, { username: user });
  assert.equal(res.status, 200, `login as ${user}: ${res.status} ${res.body.slice(0, 200)}`);
  return b;
}

/** What the upstream app received for `path` (its JSON echo). */
async function echo(b, path = '/echo', options = {}) {
  const res = await b.request(`${s.app}${path}`, { ...options, headers: { ...JSON_ACCEPT, ...(options.headers || {}) } });
  assert.equal(res.status, 200, `${path}: ${res.status} ${res.body.slice(0, 200)}`);
  return res.json();
}

test('full login: navigation → issuer → callback → back to the original URL with a session', async () => {
  const b = new Browser();
  const mark = s.worker.lines.length;
  const first = await b.request(`${s.app}/albums/2024?sort=date`, { headers: { accept: 'text/html' } });
  assert.equal(first.status, 303);
  const authorize = new URL(first.location);
  assert.equal(authorize.origin, s.issuer.url);
  const q = authorize.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), 'portcullis');
  assert.equal(q.get('redirect_uri'), `${s.app}/.portcullis/callback`);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('state'), /^[\w-]{43}$/);
  assert.match(q.get('nonce'), /^[\w-]{43}$/);
  assert.match(q.get('scope'), /^openid /);
  const loginCookie = first.setCookies.find((c) => c.startsWith('__Host-portcullis-login-'));
  assert.ok(loginCookie, 'a pending-login cookie is set');
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/']) assert.ok(loginCookie.includes(attr), `${attr} in ${loginCookie}`);
  assert.deepEqual(s.worker.kvOps(mark), [], 'an unauthenticated request costs no KV operation');

  const page = await b.follow(first.location);
  const done = await submitLogin(b, page, { username: 'alice' });
  assert.equal(done.status, 200);
  assert.equal(done.url, `${s.app}/albums/2024?sort=date`);
  const callback = done.chain.find((r) => r.url.includes('/.portcullis/callback'));
  const sessionCookie = callback.setCookies.find((c) => c.startsWith(`${SESSION}=`));
  assert.ok(sessionCookie, 'session cookie set');
  for (const attr of ['HttpOnly', 'Secure', 'SameSite=Lax', 'Path=/', 'Max-Age=604800']) assert.ok(sessionCookie.includes(attr), `${attr} in ${sessionCookie}`);
  assert.ok(!sessionCookie.includes('Domain='), 'host-only without cookie_domain');
  assert.ok(callback.setCookies.some((c) => c.startsWith('__Host-portcullis-login-') && c.includes('Max-Age=0')), 'pending-login cookie cleared');
  const puts = s.worker.kvOps(mark).filter((o) => o.kv === 'put');
  const writes = puts.filter((o) => o.key.startsWith('session:'));
  assert.equal(writes.length, 1, 'one session record');
  assert.match(writes[0].key, /^session:[\w-]{43}$/);
  const hash = writes[0].key.slice('session:'.length);
  assert.ok(puts.every((o) => o.key.endsWith(hash)), 'the other writes are its index keys');
  assert.ok(puts.length <= 3, 'record, user index, issuer-session index');
  const rawId = b.cookie(SESSION).split('.')[0];
  assert.ok(!writes[0].key.includes(rawId), 'the KV key is a hash, not the session ID');

  const stored = JSON.parse(await s.worker.kv.get(writes[0].key));
  assert.equal(stored.identity.sub, 'alice-0001');
  assert.ok(stored.expires - stored.created === 604800);
  assert.ok(stored.id_token, 'what logout needs is kept');
  const { expiration } = (await s.worker.kv.list({ prefix: 'session:' })).keys.find((k) => k.name === writes[0].key);
  assert.ok(Math.abs(expiration - stored.expires) <= 2, 'KV expiration equals the session expiry');
});

test('proxied request carries identity headers; Portcullis cookies never reach the app', async () => {
  const b = await signedIn('alice');
  b.setCookie('app_pref', 'dark', 'photos.localhost');
  const got = await echo(b, '/api/whoami?x=1');
  const h = got.headers;
  // The user name is the verified email by default (user_claim), never a name the user edits.
  assert.equal(h['x-auth-request-user'], 'alice@example.com');
  assert.equal(h['x-auth-request-email'], 'alice@example.com');
  assert.equal(h['x-auth-request-groups'], 'family,admins');
  assert.equal(h['x-auth-request-preferred-username'], 'alice');
  assert.equal(h['remote-user'], 'alice@example.com');
  assert.equal(h['remote-email'], 'alice@example.com');
  assert.equal(h['remote-groups'], 'family,admins');
  assert.equal(h['remote-name'], 'Alice Example');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], new URL(s.app).host);
  assert.equal(h.cookie, 'app_pref=dark', 'only the app\'s own cookie is forwarded');
  assert.equal(got.url, '/api/whoami?x=1');
});

test('large and non-ASCII request headers reach the app exactly, one request after another', async () => {
  const b = await signedIn('alice');
  // The entry module encodes small requests into one reused 16 KB buffer and larger ones
  // into their own: neither may be cut short or bleed into the next request. (Header bytes
  // arrive as Latin-1: 8,500 'é' are 17,000 bytes of UTF-8.)
  const big = '\u00e9'.repeat(8500);
  for (const [name, value] of [['x-note', 'caf\u00e9'], ['x-big', big], ['x-note', 'plain']]) {
    // A spoofed header that sorts after the big one must still be seen, and stripped.
    const got = await echo(b, '/echo', { headers: { [name]: value, 'x-forwarded-user': 'mallory' } });
    assert.equal(got.headers[name], value, name);
    assert.equal(got.headers['x-auth-request-user'], 'alice@example.com');
    assert.equal(got.headers['x-big'], name === 'x-big' ? big : undefined);
    assert.equal(got.headers['x-forwarded-user'], undefined, `after ${name}`);
  }
});

test('spoofed identity headers from the client are removed', async () => {
  const b = await signedIn('bob');
  const got = await echo(b, '/echo', {
    headers: {
      'x-auth-request-user': 'admin',
      'X-Auth-Request-Groups': 'admins',
      'remote-user': 'admin',
      'remote-groups': 'admins',
      'x-forwarded-user': 'admin',
      'x-forwarded-for': '10.0.0.1',
    },
  });
  // Bob's email is not verified: no email header, and his sub as the user name.
  assert.equal(got.headers['x-auth-request-user'], 'bob-0002');
  assert.equal(got.headers['x-auth-request-email'], undefined);
  assert.equal(got.headers['remote-email'], undefined);
  assert.equal(got.headers['x-auth-request-groups'], 'guests');
  assert.equal(got.headers['remote-user'], 'bob-0002');
  assert.equal(got.headers['remote-groups'], 'guests');
  assert.equal(got.headers['x-forwarded-user'], undefined);
  assert.notEqual(got.headers['x-forwarded-for'], '10.0.0.1');

  // Without a session nothing identity-like gets through either (and nothing is proxied).
  const anon = new Browser();
  const res = await anon.request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, 'remote-user': 'admin' } });
  assert.equal(res.status, 401);
});

test('forged and garbage session cookies are refused without touching KV', async () => {
  const b = new Browser();
  const forged = `${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
  for (const value of [forged, 'garbage', '', 'a.b', forged.replace('.', '')]) {
    const mark = s.worker.lines.length;
    const res = await b.request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, cookie: `${SESSION}=${value}` } });
    assert.equal(res.status, 401, value);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(s.worker.kvOps(mark), [], `no KV operation for ${value}`);
  }
});

test('a correctly signed cookie for an unknown or expired session is refused', async () => {
  const secret = SESSION_SECRET;
  const id = randomBytes(32);
  const cookie = `${SESSION}=${signSessionId(id, secret)}`;
  const res = await new Browser().request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, cookie } });
  assert.equal(res.status, 401, 'unknown session');

  // An expired record (KV may not have dropped it yet): refused, and navigation goes to login.
  const key = `session:${createHash('sha256').update(id).digest('base64url')}`;
  const now = Math.floor(Date.now() / 1000);
  await s.worker.kv.put(key, JSON.stringify({
    v: 1, identity: { sub: 'ghost', groups: [] }, created: now - 7200, expires: now - 60, host: 'photos.localhost',
  }), { expirationTtl: 3600 });
  const api = await new Browser().request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, cookie } });
  assert.equal(api.status, 401, 'expired session');
  const nav = await new Browser().request(`${s.app}/echo`, { headers: { accept: 'text/html', cookie } });
  assert.equal(nav.status, 303);
  assert.ok(nav.location.startsWith(s.issuer.url));

  // The same record, live, is accepted: the refusal above was about expiry. (Under another
  // session ID: an isolate remembers for a minute that the first one was not live.)
  const liveId = randomBytes(32);
  const liveKey = `session:${createHash('sha256').update(liveId).digest('base64url')}`;
  await s.worker.kv.put(liveKey, JSON.stringify({
    v: 1, identity: { sub: 'ghost', groups: [] }, created: now - 60, expires: now + 3600, host: 'photos.localhost',
  }), { expirationTtl: 3600 });
  const liveCookie = `${SESSION}=${signSessionId(liveId, secret)}`;
  const live = await new Browser().request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, cookie: liveCookie } });
  assert.equal(live.status, 200);
  assert.equal(live.json().headers['x-auth-request-user'], 'ghost');
});

test('API and non-navigation requests get 401 JSON, never a redirect', async () => {
  const b = new Browser();
  for (const [method, headers] of [
    ['GET', JSON_ACCEPT],
    ['GET', {}],
    ['GET', { accept: 'text/html', 'sec-fetch-mode': 'cors' }],
    ['POST', { accept: 'text/html', 'content-type': 'application/json' }],
    ['DELETE', JSON_ACCEPT],
  ]) {
    const res = await b.request(`${s.app}/api/assets`, { method, headers, body: method === 'POST' ? '{}' : undefined });
    assert.equal(res.status, 401, `${method} ${JSON.stringify(headers)}`);
    assert.equal(res.location, undefined);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.json().error, 'unauthenticated');
  }
});

test('a valid session costs at most one KV read per request and no writes', async () => {
  const b = await signedIn('alice');
  const mark = s.worker.lines.length;
  for (let i = 0; i < 5; i += 1) await echo(b, `/echo?n=${i}`);
  const ops = s.worker.kvOps(mark);
  assert.equal(ops.filter((o) => o.kv !== 'get').length, 0, 'no writes or deletes');
  assert.ok(ops.length <= 5, `at most one read per request, got ${ops.length}`);
});

test('origin redirects and multiple Set-Cookie headers pass back unchanged', async () => {
  const b = await signedIn('alice');
  const red = await b.request(`${s.app}/redirect`, { headers: JSON_ACCEPT });
  assert.equal(red.status, 302, 'the redirect is not followed by the gate');
  assert.equal(red.headers.location, '/after-redirect?from=origin');
  const ck = await b.request(`${s.app}/cookies`, { headers: JSON_ACCEPT });
  assert.equal(ck.status, 200);
  assert.deepEqual(ck.setCookies, ['a=1; Path=/', 'b=2; Path=/; HttpOnly', 'c=3; Path=/; Max-Age=60']);
  // The origin's Set-Cookie for a Portcullis cookie name is dropped on the way back.
  const planted = await b.request(`${s.app}/plant`, { headers: JSON_ACCEPT });
  assert.equal(planted.status, 200);
  assert.deepEqual(planted.setCookies, ['a=1; Path=/']);
  assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 200, 'still signed in');
});

/**
 * A chunked POST of `total` bytes without Content-Length; resolves with `{ status }`, or
 * `{ reset }` when the connection was reset while the body was still being sent: a server
 * that answers early and closes makes the client's kernel drop the unread answer, as
 * browsers see too, so the caller then checks the gate's own log for the status.
 */
function chunkedPost(url, total) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: '127.0.0.1', port: u.port, path: u.pathname, method: 'POST', headers: { host: u.host, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });
    req.on('response', (res) => {
      resolve({ status: res.statusCode });
      res.resume();
      req.destroy();
    });
    req.on('error', (e) => {
      if (req.destroyed && !['ECONNRESET', 'EPIPE'].includes(e.code)) return;
      if (['ECONNRESET', 'EPIPE'].includes(e.code)) resolve({ reset: e.code });
      else reject(e);
    });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const pump = () => {
      // Bounded: at most total / 64 KB chunks, stopping when the gate has answered.
      while (sent < total && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return req.once('drain', pump);
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}

test('a huge chunked POST to an endpoint gets 413 and does not hurt the isolate', async () => {
  const b = await signedIn('alice');
  await echo(b, '/warm');
  const before = s.worker.lines.length;
  const answer = await chunkedPost(`${s.app}/.portcullis/logout`, 50 * 1024 * 1024);
  if (answer.reset) {
    // The answer was lost to the reset; the gate's log says which it was.
    const logged = await (async () => {
      for (let i = 0; i < 50; i += 1) {
        const line = s.worker.lines.slice(before).find((l) => l.includes('"reason":"payload_too_large"'));
        if (line) return JSON.parse(line);
        await new Promise((r) => setTimeout(r, 100));
      }
      return undefined;
    })();
    assert.equal(logged?.status, 413, `connection ${answer.reset} and no 413 logged`);
  } else {
    assert.equal(answer.status, 413);
  }
  // The same isolate serves the next signed-in request from its warm cache.
  const mark = s.worker.lines.length;
  const got = await echo(b, '/after');
  assert.equal(got.url, '/after');
  assert.deepEqual(s.worker.kvOps(mark), [], 'served from the isolate cache: no KV read');
});

test('an origin resetting the connection gets a clear answer and costs no session', async () => {
  const b = await signedIn('alice');
  const early = await b.request(`${s.app}/reset-early`, { headers: { accept: 'text/html' } });
  assert.equal(early.status, 502);
  assert.match(early.body, /The app is down/);
  assert.doesNotMatch(early.body, /ECONNRESET|at \S+:\d+/, 'no internals or stack trace');
  // Halfway through the body the status is sent already: the client sees the body cut.
  const mid = await b.request(`${s.app}/reset-mid`, { headers: JSON_ACCEPT }).then(
    (res) => ({ status: res.status, bytes: res.body.length }),
    (error) => ({ error }),
  );
  assert.ok(mid.error || mid.bytes < 1048576, 'the cut body is not passed off as whole');
  assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 200, 'the session survives');
  assert.equal((await echo(b, '/after-reset')).url, '/after-reset');
});

test('a POST body is streamed through intact', async () => {
  const b = await signedIn('alice');
  const body = randomBytes(5 * 1024 * 1024 + 17);
  const got = await echo(b, '/upload', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
  assert.equal(got.method, 'POST');
  assert.equal(got.body.bytes, body.length);
  assert.equal(got.body.sha256, createHash('sha256').update(body).digest('hex'));
});

test('protected responses the origin marks shareable are made private', async () => {
  const b = await signedIn('alice');
  const res = await b.request(`${s.app}/public`, { headers: JSON_ACCEPT });
  assert.equal(res.headers['cache-control'], 'private, max-age=3600');
  const plain = await b.request(`${s.app}/echo`, { headers: JSON_ACCEPT });
  assert.equal(plain.headers['cache-control'], undefined, 'nothing shareable: passed through as is');
});

test("an app's WebSocket upgrade cannot plant Portcullis cookies; its own cookies pass", async () => {
  const b = await signedIn('alice');
  const port = new URL(s.app).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?plant=1`, {
    headers: { host: new URL(s.app).host, cookie: b.cookieHeader(s.app) },
  });
  let upgrade;
  const hello = await new Promise((resolve, reject) => {
    ws.on('upgrade', (res) => { upgrade = res; });
    ws.once('message', (d) => resolve(d.toString()));
    ws.on('error', reject);
    setTimeout(() => reject(new Error('websocket timeout')), 10_000);
  });
  ws.close();
  assert.equal(upgrade.statusCode, 101);
  assert.equal(JSON.parse(hello).hello, 'alice@example.com', 'the socket still works');
  const cookies = upgrade.headers['set-cookie'] ?? [];
  assert.ok(!cookies.some((c) => /portcullis/i.test(c)), `no Portcullis cookie from the app: ${cookies}`);
  assert.ok(cookies.some((c) => c.startsWith('app_pref=dark')), `the app's own cookie passes: ${cookies}`);
});

test('WebSocket upgrade works end to end through the gate', async () => {
  const b = await signedIn('alice');
  const port = new URL(s.app).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
    headers: { host: new URL(s.app).host, cookie: b.cookieHeader(s.app) },
  });
  const messages = [];
  await new Promise((resolve, reject) => {
    ws.on('message', (data) => {
      messages.push(data.toString());
      if (messages.length === 1) ws.send('ping through the gate');
      if (messages.length === 2) resolve();
    });
    ws.on('error', reject);
    setTimeout(() => reject(new Error('websocket timeout')), 10_000);
  });
  ws.close();
  assert.equal(JSON.parse(messages[0]).hello, 'alice@example.com', 'the upstream saw the identity on the upgrade');
  assert.equal(messages[1], 'ping through the gate');

  const anon = await new Promise((resolve) => {
    const w = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host: new URL(s.app).host } });
    w.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    w.on('open', () => resolve('open'));
    w.on('error', () => resolve('error'));
  });
  assert.equal(anon, 401, 'no session, no upgrade');
});

test('/.portcullis/me returns the identity, or 401 JSON without a session', async () => {
  const b = await signedIn('alice');
  const me = await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
  assert.equal(me.status, 200);
  const j = me.json();
  assert.equal(j.sub, 'alice-0001');
  assert.equal(j.email, 'alice@example.com');
  assert.equal(j.name, 'Alice Example');
  assert.equal(j.preferred_username, 'alice');
  assert.deepEqual(j.groups, ['family', 'admins']);
  assert.ok(j.expires > Date.now() / 1000);
  const anon = await new Browser().request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
  assert.equal(anon.status, 401);
  assert.equal(anon.json().error, 'unauthenticated');
});

test('unknown hosts and unknown /.portcullis/ paths get 404 and are never proxied', async () => {
  const b = await signedIn('alice');
  const unknown = await b.request(`${s.at('other.localhost')}/`, { headers: { accept: 'text/html' } });
  assert.equal(unknown.status, 404);
  assert.match(unknown.body, /not configured/);
  const own = await b.request(`${s.app}/.portcullis/admin-ish`, { headers: { accept: 'text/html' } });
  assert.equal(own.status, 404);
  assert.doesNotMatch(own.body, /Demo app/);
});

test('return URLs: only this host or configured hosts, never elsewhere', async () => {
  for (const [rd, expected] of [
    ['/albums/1', `${s.app}/albums/1`],
    ['https://evil.example.org/', `${s.app}/`],
    ['//evil.example.org/', `${s.app}/`],
    ['/\\evil.example.org', `${s.app}/`],
    ['javascript:alert(1)', `${s.app}/`],
    ['%2F%2Fevil.example.org', `${s.app}/`],
    [`${s.down}/x`, `${s.down}/x`],
  ]) {
    const b = new Browser();
    const res = await b.request(`${s.app}/.portcullis/login?rd=${encodeURIComponent(rd)}`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 303, rd);
    const page = await b.follow(res.location);
    const done = await submitLogin(b, page, { username: 'alice' });
    const callback = done.chain.find((r) => r.url.includes('/.portcullis/callback'));
    assert.equal(callback.location, expected, `rd=${rd}`);
  }
});

test('two tabs logging in at the same time both succeed', async () => {
  const b = new Browser();
  const tab1 = await b.request(`${s.app}/one`, { headers: { accept: 'text/html' } });
  const tab2 = await b.request(`${s.app}/two`, { headers: { accept: 'text/html' } });
  const names = b.cookies.filter((c) => c.name.startsWith('__Host-portcullis-login-')).map((c) => c.name);
  assert.equal(new Set(names).size, 2, 'one pending-login cookie per tab');
  const page2 = await b.follow(tab2.location);
  const done2 = await submitLogin(b, page2, { username: 'alice' });
  assert.equal(done2.url, `${s.app}/two`);
  // Tab 1 continues: the issuer already knows the user, so it goes straight back.
  const done1 = await b.follow(tab1.location);
  assert.equal(done1.status, 200);
  assert.equal(done1.url, `${s.app}/one`);
});

test('callback errors: issuer error, replayed callback, forged state', async () => {
  const b = new Browser();
  const start = await b.request(`${s.app}/x`, { headers: { accept: 'text/html' } });
  const state = new URL(start.location).searchParams.get('state');
  const denied = await b.request(`${s.app}/.portcullis/callback?error=access_denied&error_description=User%20said%20no&state=${state}`, { headers: { accept: 'text/html' } });
  assert.equal(denied.status, 400);
  assert.match(denied.body, /access_denied/);
  assert.match(denied.body, /User said no/);
  assert.match(denied.body, /Try again/);
  assert.match(denied.body, /href="\/\.portcullis\/login\?rd=/);

  const ok = new Browser();
  const done = await login(ok, `${s.app}/x`);
  const callbackUrl = done.chain.find((r) => r.url.includes('/.portcullis/callback')).url;
  const replay = await ok.request(callbackUrl, { headers: { accept: 'text/html' } });
  assert.equal(replay.status, 400, 'a replayed callback is refused (its login cookie is gone)');
  assert.match(replay.body, /expired or was already used/);
  const stranger = await new Browser().request(callbackUrl, { headers: { accept: 'text/html' } });
  assert.equal(stranger.status, 400, 'a callback URL is useless in another browser');

  const forged = new Browser();
  const st = await forged.request(`${s.app}/y`, { headers: { accept: 'text/html' } });
  const realState = new URL(st.location).searchParams.get('state');
  const fake = `${realState.slice(0, 16)}${'A'.repeat(27)}`;
  const res = await forged.request(`${s.app}/.portcullis/callback?code=abc&state=${fake}`, { headers: { accept: 'text/html' } });
  assert.equal(res.status, 400, 'state must match the pending login exactly');
});

test('logout ends the session here and at the issuer', async () => {
  const b = await signedIn('alice');
  const cookie = b.cookieHeader(s.app);
  const res = await b.request(`${s.app}/.portcullis/logout`, { headers: { accept: 'text/html', 'sec-fetch-site': 'same-origin' } });
  assert.equal(res.status, 303);
  const end = new URL(res.location);
  assert.equal(end.origin, s.issuer.url);
  assert.ok(end.searchParams.get('id_token_hint'), 'id_token_hint sent');
  assert.equal(end.searchParams.get('client_id'), 'portcullis');
  assert.equal(end.searchParams.get('post_logout_redirect_uri'), `${s.app}/.portcullis/signed-out`);
  assert.ok(res.setCookies.some((c) => c.startsWith(`${SESSION}=;`) && c.includes('Max-Age=0')), 'session cookie cleared');

  // The old cookie no longer works, even replayed.
  const replay = await new Browser().request(`${s.app}/echo`, { headers: { ...JSON_ACCEPT, cookie } });
  assert.equal(replay.status, 401);

  // The issuer asks for confirmation, then returns to the signed-out page.
  const confirm = await b.follow(res.location);
  assert.equal(confirm.status, 200);
  const xsrf = confirm.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
  const action = confirm.body.match(/action="([^"]+)"/)?.[1];
  assert.ok(xsrf && action, 'issuer logout form');
  const out = await b.request(new URL(action, confirm.url).toString(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
  });
  const landed = await b.follow(out.location);
  assert.equal(landed.url, `${s.app}/.portcullis/signed-out`);
  assert.match(landed.body, /You are signed out/);

  // The issuer's session is gone too: signing in again asks for the password.
  const again = await b.follow(`${s.app}/`);
  assert.match(again.body, /\/interaction\/[^"]+\/login/, 'login form shown again');
});

test('logout cannot be triggered cross-site', async () => {
  const b = await signedIn('alice');
  const cross = await b.request(`${s.app}/.portcullis/logout`, { headers: { accept: 'text/html', 'sec-fetch-site': 'cross-site' } });
  assert.equal(cross.status, 200, 'a confirmation page, not a logout');
  assert.match(cross.body, /Sign out\?/);
  assert.match(cross.body, /signed in as alice/);
  const noHeader = await b.request(`${s.app}/.portcullis/logout`, { headers: { accept: 'text/html' } });
  assert.equal(noHeader.status, 200, 'without Sec-Fetch-Site: confirmation too');
  assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 200, 'still signed in');

  const forged = await b.request(`${s.app}/.portcullis/logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: 'csrf=forged',
  });
  assert.equal(forged.status, 403);
  assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 200, 'still signed in');

  // SameSite=Lax keeps the session cookie off a cross-site POST: such a cookieless POST
  // gets the confirmation page, and clears no cookie.
  const cookieless = await new Browser().request(`${s.app}/.portcullis/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'sec-fetch-site': 'cross-site', origin: 'https://evil.example.org' },
    body: '',
  });
  assert.equal(cookieless.status, 403);
  assert.match(cookieless.body, /Sign out\?/);
  assert.deepEqual(cookieless.setCookies ?? [], [], 'no Set-Cookie');

  const csrf = cross.body.match(/name="csrf" value="([^"]+)"/)[1];
  const real = await b.request(`${s.app}/.portcullis/logout`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: `csrf=${encodeURIComponent(csrf)}`,
  });
  assert.equal(real.status, 303);
  assert.equal((await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).status, 401, 'signed out');
});

test('key rotation at the issuer: an unknown kid makes the gate refetch the JWKS', async () => {
  await signedIn('alice'); // the gate now caches the current key
  const kid = await s.issuer.rotate('ES256');
  const b = await signedIn('alice');
  const me = (await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT })).json();
  assert.equal(me.sub, 'alice-0001', `login after the issuer rotated to ES256 key ${kid}`);
  await s.issuer.rotate('RS256');
});

test('issuer down: existing sessions keep working, new logins get a 503 page', async () => {
  const b = await signedIn('alice');
  s.issuer.setDown(true);
  try {
    const ok = await b.request(`${s.app}/echo`, { headers: JSON_ACCEPT });
    assert.equal(ok.status, 200, 'existing session unaffected');
    // The discovery document is cached, so the login starts; the code exchange cannot happen.
    const fresh = new Browser();
    const start = await fresh.request(`${s.app}/new`, { headers: { accept: 'text/html' } });
    assert.equal(start.status, 303);
    const state = new URL(start.location).searchParams.get('state');
    const cb = await fresh.request(`${s.app}/.portcullis/callback?code=x&state=${state}`, { headers: { accept: 'text/html' } });
    assert.equal(cb.status, 503);
    assert.match(cb.body, /identity provider cannot be reached/);
  } finally {
    s.issuer.setDown(false);
  }
});

test('origin down: a 502 page saying the app is down, not a login loop', async () => {
  const b = new Browser();
  await login(b, `${s.down}/`);
  const res = await b.request(`${s.down}/`, { headers: { accept: 'text/html' } });
  assert.equal(res.status, 502);
  assert.match(res.body, /The app is down/);
  assert.match(res.body, /down\.localhost/);
});
