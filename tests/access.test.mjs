// Who may reach which app, and how clients without a browser get in: per-app rules,
// public and API paths (with a corpus of path tricks), service tokens, bearer tokens
// from the issuer, and the signed identity assertion — all against the real worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SignJWT, importJWK, createLocalJWKSet, jwtVerify } from 'jose';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { ROOT } from '../stack/worker.mjs';

const run = promisify(execFile);
const JSON_ACCEPT = { accept: 'application/json' };
let s;
let immich; // { name, client_id, secret, secret_sha256 } from scripts/service-token
let nzb;
let assertionJwk;

before(async () => {
  immich = JSON.parse((await run(`${ROOT}/scripts/service-token`, ['immich-mobile', '--json'])).stdout);
  nzb = JSON.parse((await run(`${ROOT}/scripts/service-token`, ['nzb360', '--json'])).stdout);
  assertionJwk = (await run(`${ROOT}/scripts/assertion-key`, ['ES256', '--json'])).stdout.trim();
  s = await startStack({
    photos: {
      allow_groups: ['family'],
      allow_emails: ['Carol@Example.net', 'bob@example.org'],
      public_paths: ['/share/**', '/favicon.ico', '/api/shared-link/*'],
      api_paths: ['/api/**'],
      service_tokens: ['immich-mobile'],
    },
    apps: [
      { host: 'sonarr.localhost', allow_email_domains: ['example.com'], api_paths: ['/api/**'], service_tokens: ['nzb360'], accept_bearer: true, bearer_audiences: ['sonarr-cli'] },
      { host: 'open.localhost' },
    ],
    config: {
      service_tokens: [immich, nzb].map(({ name, client_id, secret_sha256 }) => ({ name, client_id, secret_sha256 })),
    },
    secrets: { ASSERTION_KEY: assertionJwk },
  });
});
after(async () => { await s?.stop(); });

const url = (host, path = '/') => `${s.at(host)}${path}`;

/** A browser signed in as `user` on each of `hosts` (sessions are per host without cookie_domain). */
async function as(user, hosts = ['photos.localhost', 'sonarr.localhost', 'open.localhost']) {
  const b = new Browser(user);
  for (const host of hosts) {
    const done = await login(b, url(host, '/.portcullis/login?rd=%2F.portcullis%2Fme'), { username: user });
    assert.ok(done.chain.some((r) => r.url.includes('/.portcullis/callback') && r.status === 303), `${user} signed in on ${host}`);
  }
  return b;
}

/** A request with a raw path, exactly as written (no URL normalisation on the client side). */
function raw(host, path, headers = {}) {
  const port = new URL(s.app).port;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { host: `${host}:${port}`, ...JSON_ACCEPT, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('allow rules: by group, by verified email, by email domain; no rules admit everyone', async () => {
  const alice = await as('alice'); // family, alice@example.com (verified)
  const bob = await as('bob'); // guests, bob@example.org (NOT verified)
  const carol = await as('carol'); // no groups, carol@example.net (verified)
  const status = async (b, host) => (await b.request(url(host, '/echo'), { headers: JSON_ACCEPT })).status;
  assert.equal(await status(alice, 'photos.localhost'), 200, 'alice: group family');
  assert.equal(await status(carol, 'photos.localhost'), 200, 'carol: allow_emails, case-insensitive');
  assert.equal(await status(bob, 'photos.localhost'), 403, 'bob: listed email, but not verified');
  assert.equal(await status(alice, 'sonarr.localhost'), 200, 'alice: domain example.com');
  assert.equal(await status(carol, 'sonarr.localhost'), 403, 'carol: other domain');
  assert.equal(await status(bob, 'sonarr.localhost'), 403);
  for (const b of [alice, bob, carol]) assert.equal(await status(b, 'open.localhost'), 200, 'no rules: everyone');
});

test('a denied user gets a 403 page naming them, with "sign in as someone else" and "sign out"', async () => {
  const bob = await as('bob');
  const page = await bob.request(url('photos.localhost', '/albums'), { headers: { accept: 'text/html' } });
  assert.equal(page.status, 403);
  assert.match(page.body, /signed in as bob/);
  assert.match(page.body, /href="\/\.portcullis\/login\?rd=%2Falbums&amp;switch=1"/);
  assert.match(page.body, /<form method="post" action="\/\.portcullis\/logout"><input type="hidden" name="csrf" value="[\w-]+">/);
  const api = await bob.request(url('photos.localhost', '/api/assets'), { headers: JSON_ACCEPT });
  assert.equal(api.status, 403);
  assert.equal(api.json().error, 'forbidden');
  // "Sign in as someone else" asks the issuer to show its login form again.
  const sw = await bob.request(url('photos.localhost', '/.portcullis/login?rd=%2Falbums&switch=1'), { headers: { accept: 'text/html' } });
  assert.equal(new URL(sw.location).searchParams.get('prompt'), 'login');
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(s.worker.lines.some((l) => l.includes('"event":"denied"') && l.includes('bob-0002')), 'denials are logged');
});

test('public paths pass without a session, without identity headers, spoofs stripped', async () => {
  const anon = new Browser();
  for (const path of ['/share/abc/def', '/share', '/favicon.ico', '/api/shared-link/xyz']) {
    const res = await anon.request(url('photos.localhost', path), { headers: { ...JSON_ACCEPT, 'remote-user': 'admin', 'x-auth-request-user': 'admin' } });
    assert.equal(res.status, 200, path);
    const got = res.json();
    assert.equal(got.url, path);
    assert.equal(got.headers['remote-user'], undefined);
    assert.equal(got.headers['x-auth-request-user'], undefined);
  }
  // A signed-in user on a public path: still no identity headers.
  const alice = await as('alice');
  const got = (await alice.request(url('photos.localhost', '/share/x'), { headers: JSON_ACCEPT })).json();
  assert.equal(got.headers['x-auth-request-user'], undefined);
});

test('API paths never redirect: 401 JSON even for a browser navigation', async () => {
  const anon = new Browser();
  const res = await anon.request(url('photos.localhost', '/api/assets'), { headers: { accept: 'text/html' } });
  assert.equal(res.status, 401);
  assert.equal(res.location, undefined);
  assert.equal(res.json().error, 'unauthenticated');
  const nav = await anon.request(url('photos.localhost', '/albums'), { headers: { accept: 'text/html' } });
  assert.equal(nav.status, 303, 'other paths still redirect to login');
});

test('path tricks: each is refused, or judged and forwarded as the same normalised path', async () => {
  // [raw path, expected status, path the app receives when proxied]
  const corpus = [
    ['/share/../admin', 401],
    ['/share/%2e%2e/admin', 401],
    ['/share/%2E%2E/admin', 401],
    ['/share/.%2e/admin', 401],
    ['/share/x/../../admin', 401],
    ['/share//../admin', 200, '/share/admin'],
    ['/share\\..\\admin', 401],
    ['/share%2f..%2fadmin', 400],
    ['/share/..%2fadmin', 400],
    ['/share/..%5cadmin', 400],
    ['/share/..;/admin', 400],
    ['/share/%2e%2e;/admin', 400],
    ['/share/..%3b/admin', 400],
    ['/share/x%00', 400],
    ['/favicon.ico%00.php', 400],
    ['/share/%252e%252e/admin', 400],
    ['/share%252f..%252fadmin', 400],
    ['/share/%%32%65%%32%65/admin', 400],
    ['/share/100%', 400],
    ['/SHARE/x', 401],
    ['/shared/x', 401],
    ['//share/x', 200, '/share/x'],
    ['/./share/x', 200, '/share/x'],
    ['/sh%61re/x', 200, '/share/x'],
    ['/share/a%2520b', 200, '/share/a%2520b'],
    ['/admin/../favicon.ico', 200, '/favicon.ico'],
    ['/share/x?next=/admin', 200, '/share/x?next=/admin'],
  ];
  for (const [path, status, forwarded] of corpus) {
    const res = await raw('photos.localhost', path);
    assert.equal(res.status, status, `${path} → ${res.status} ${res.body.slice(0, 120)}`);
    if (status === 200) assert.equal(JSON.parse(res.body).url, forwarded, `${path} is forwarded as judged`);
    if (status === 400) assert.equal(JSON.parse(res.body).error, 'ambiguous_path');
  }
});

test('service tokens: header pair and Basic, refused when wrong, unknown or not listed; no KV', async () => {
  const b = new Browser();
  const pair = { 'portcullis-client-id': immich.client_id, 'portcullis-client-secret': immich.secret };
  const mark = s.worker.lines.length;
  const ok = await b.request(url('photos.localhost', '/api/assets'), { headers: { ...JSON_ACCEPT, ...pair } });
  assert.equal(ok.status, 200);
  const got = ok.json();
  assert.equal(got.headers['x-auth-request-user'], 'service:immich-mobile');
  assert.equal(got.headers['remote-user'], 'service:immich-mobile');
  assert.equal(got.headers['portcullis-client-id'], undefined, 'the header pair is consumed');
  assert.equal(got.headers['portcullis-client-secret'], undefined);

  const basic = `Basic ${Buffer.from(`${immich.client_id}:${immich.secret}`).toString('base64')}`;
  const viaBasic = await b.request(url('photos.localhost', '/api/assets'), { headers: { ...JSON_ACCEPT, authorization: basic } });
  assert.equal(viaBasic.status, 200);
  assert.equal(viaBasic.json().headers.authorization, undefined, 'a matched Basic header is consumed');
  assert.equal(viaBasic.json().headers['x-auth-request-user'], 'service:immich-mobile');

  const refused = [
    ['wrong secret', { 'portcullis-client-id': immich.client_id, 'portcullis-client-secret': 'wrong' }, 'invalid_service_token'],
    ['unknown id', { 'portcullis-client-id': 'nobody.0000', 'portcullis-client-secret': immich.secret }, 'invalid_service_token'],
    ['half a pair', { 'portcullis-client-id': immich.client_id }, 'invalid_service_token'],
    ['not listed for the app', { 'portcullis-client-id': nzb.client_id, 'portcullis-client-secret': nzb.secret }, 'service_token_not_allowed_here'],
    ['wrong secret via Basic', { authorization: `Basic ${Buffer.from(`${immich.client_id}:nope`).toString('base64')}` }, 'invalid_service_token'],
  ];
  for (const [why, headers, code] of refused) {
    const res = await b.request(url('photos.localhost', '/'), { headers: { accept: 'text/html', ...headers } });
    assert.equal(res.status, 401, why);
    assert.equal(res.location, undefined, `${why}: never a redirect`);
    assert.equal(res.json().error, code, why);
  }
  const other = await b.request(url('sonarr.localhost', '/api/queue'), { headers: { ...JSON_ACCEPT, 'portcullis-client-id': nzb.client_id, 'portcullis-client-secret': nzb.secret } });
  assert.equal(other.status, 200, 'nzb360 opens sonarr, which lists it');
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(s.worker.kvOps(mark), [], 'service tokens cost no KV operation');
});

test("an app's own Basic authentication passes untouched", async () => {
  const alice = await as('alice');
  const own = `Basic ${Buffer.from('admin:app-password').toString('base64')}`;
  const res = await alice.request(url('photos.localhost', '/echo'), { headers: { ...JSON_ACCEPT, authorization: own } });
  assert.equal(res.status, 200);
  assert.equal(res.json().headers.authorization, own);
  const anon = await new Browser().request(url('photos.localhost', '/echo'), { headers: { ...JSON_ACCEPT, authorization: own } });
  assert.equal(anon.status, 401, 'but it is no substitute for a session');
});

async function issuerToken(claims, { key } = {}) {
  const jwk = key || s.issuer.keys[0];
  const signingKey = await importJWK(jwk, jwk.alg);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: s.issuer.url, aud: 'portcullis', sub: 'alice-0001', email: 'alice@example.com', email_verified: true, iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'at+jwt' })
    .sign(signingKey);
}

test('bearer tokens from the issuer where accept_bearer = true', async () => {
  const b = new Browser();
  const call = (host, token) => b.request(url(host, '/api/queue'), { headers: { ...JSON_ACCEPT, authorization: `Bearer ${token}` } });
  const good = await call('sonarr.localhost', await issuerToken({}));
  assert.equal(good.status, 200);
  assert.equal(good.json().headers['x-auth-request-user'], 'alice@example.com');
  assert.equal(good.json().headers.authorization, undefined, 'the consumed token is not forwarded');
  assert.equal((await call('sonarr.localhost', await issuerToken({ aud: ['x', 'sonarr-cli'] }))).status, 200, 'bearer_audiences');
  // ID tokens (they travel in logout URLs) and logout tokens never open an app.
  for (const marks of [{ nonce: 'n-1' }, { at_hash: 'x' }, { c_hash: 'x' }, { typ: 'ID' }, { events: {} }]) {
    const mark = s.worker.lines.length;
    const refused = await call('sonarr.localhost', await issuerToken(marks));
    assert.equal(refused.status, 401, `a token with ${Object.keys(marks)[0]} is not an access token`);
    assert.equal(refused.json().error, 'invalid_token');
    // Worker log lines arrive asynchronously: wait (bounded) for the one explaining it.
    const said = () => s.worker.lines.slice(mark).some((l) => l.includes('not an access token'));
    for (let i = 0; i < 40 && !said(); i += 1) await new Promise((r) => setTimeout(r, 50));
    assert.ok(said(), 'the log says why');
  }

  const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const now = Math.floor(Date.now() / 1000);
  // Refused by the signature check itself (WebCrypto in the worker): same algorithm and
  // kid as the issuer's key, but another key of that type; and real signature, other claims.
  const ours = s.issuer.keys[0];
  const impostor = generateKeyPairSync('rsa', { modulusLength: ours.n ? Buffer.from(ours.n, 'base64url').length * 8 : 2048 })
    .privateKey.export({ format: 'jwk' });
  assert.equal(ours.kty, 'RSA', 'this stack signs with RSA');
  const genuine = (await issuerToken({})).split('.');
  const altered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(genuine[1], 'base64url')), sub: 'bob-0002' })).toString('base64url');
  for (const [why, token] of [
    ['expired', await issuerToken({ iat: now - 7200, exp: now - 3600 })],
    ['wrong audience', await issuerToken({ aud: 'some-other-client' })],
    ['foreign issuer', await issuerToken({ iss: 'https://evil.example.org' }, { key: { ...foreign, alg: 'ES256', kid: 'evil' } })],
    ['another key type, our kid', await issuerToken({}, { key: { ...foreign, alg: 'ES256', kid: s.issuer.keys[0].kid } })],
    ['another RSA key, our kid and alg', await issuerToken({}, { key: { ...impostor, alg: ours.alg, kid: ours.kid } })],
    ['real signature, altered claims', `${genuine[0]}.${altered}.${genuine[2]}`],
    ['garbage', 'not.a.jwt'],
  ]) {
    const res = await call('sonarr.localhost', token);
    assert.equal(res.status, 401, why);
    assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"', why);
  }
  const denied = await call('sonarr.localhost', await issuerToken({ sub: 'bob-0002', email: 'bob@example.org' }));
  assert.equal(denied.status, 403, 'access rules apply to bearer claims');
  // Where accept_bearer is false the header is the app's business.
  const photos = await call('photos.localhost', await issuerToken({}));
  assert.equal(photos.status, 401, 'not accepted on photos');
});

test('Portcullis-Assertion verifies against /.portcullis/jwks.json with an independent library', async () => {
  const jwks = await new Browser().request(url('photos.localhost', '/.portcullis/jwks.json'), { headers: JSON_ACCEPT });
  assert.equal(jwks.status, 200);
  assert.ok(!jwks.body.includes('"d"'), 'public keys only');
  const keySet = createLocalJWKSet(jwks.json());

  const alice = await as('alice');
  const got = (await alice.request(url('photos.localhost', '/echo'), { headers: { ...JSON_ACCEPT, 'portcullis-assertion': 'forged' } })).json();
  const assertion = got.headers['portcullis-assertion'];
  assert.ok(assertion && assertion !== 'forged', 'the client cannot supply its own');
  const { payload, protectedHeader } = await jwtVerify(assertion, keySet, { issuer: `${s.app}/.portcullis`, audience: 'photos.localhost' });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(payload.sub, 'alice-0001');
  assert.equal(payload.email, 'alice@example.com');
  assert.deepEqual(payload.groups, ['family', 'admins']);
  assert.ok(payload.exp - payload.iat <= 300, 'short-lived');

  const [h, p, sig] = assertion.split('.');
  const tampered = Buffer.from(JSON.stringify({ ...payload, sub: 'admin' })).toString('base64url');
  await assert.rejects(jwtVerify(`${h}.${tampered}.${sig}`, keySet), 'a tampered assertion fails');
  await assert.rejects(jwtVerify(assertion, keySet, { audience: 'sonarr.localhost' }), 'bound to its app');

  const svc = (await new Browser().request(url('photos.localhost', '/api/x'), { headers: { ...JSON_ACCEPT, 'portcullis-client-id': immich.client_id, 'portcullis-client-secret': immich.secret } })).json();
  const { payload: sp } = await jwtVerify(svc.headers['portcullis-assertion'], keySet, { audience: 'photos.localhost' });
  assert.equal(sp.sub, 'service:immich-mobile');
  void p;
});

test('EdDSA assertion keys sign in the Worker as well; a private part from another key fails closed', async () => {
  const eddsa = (await run(`${ROOT}/scripts/assertion-key`, ['EdDSA', '--json'])).stdout.trim();
  const ed = await startStack({ secrets: { ASSERTION_KEY: eddsa } });
  try {
    const b = new Browser();
    await login(b, `${ed.app}/`);
    const got = (await b.request(`${ed.app}/echo`, { headers: JSON_ACCEPT })).json();
    const keySet = createLocalJWKSet((await b.request(`${ed.app}/.portcullis/jwks.json`, { headers: JSON_ACCEPT })).json());
    const { payload, protectedHeader } = await jwtVerify(got.headers['portcullis-assertion'], keySet, { issuer: `${ed.app}/.portcullis`, audience: 'photos.localhost' });
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.sub, 'alice-0001');
  } finally {
    await ed.stop();
  }

  // The public half of one key with the private half of another: the Worker must not
  // hand the app assertions that can never verify, nor forward the request without one.
  const other = JSON.parse((await run(`${ROOT}/scripts/assertion-key`, ['ES256', '--json'])).stdout);
  const mixed = JSON.stringify({ ...JSON.parse(assertionJwk), d: other.d });
  const bad = await startStack({ secrets: { ASSERTION_KEY: mixed } });
  try {
    const b = new Browser();
    const landed = await login(b, `${bad.app}/`);
    assert.equal(landed.status, 500, 'the first proxied request fails');
    const got = await b.request(`${bad.app}/echo`, { headers: JSON_ACCEPT });
    assert.equal(got.status, 500);
    assert.equal(got.json().error, 'assertion_failed');
    assert.ok(!got.body.includes(other.d), 'the key is not shown');
  } finally {
    await bad.stop();
  }

  // scripts/check-config finds the same before a deploy.
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-check-'));
  await writeFile(path.join(dir, 'wrangler.toml'), '[[kv_namespaces]]\nbinding = "SESSIONS"\nid = "x"\n\n[vars.PORTCULLIS]\nissuer = "https://id.example.com"\nclient_id = "portcullis"\napps = [{ host = "photos.example.com" }]\n');
  await writeFile(path.join(dir, '.dev.vars'), `SESSION_SECRET=${'s'.repeat(40)}\nASSERTION_KEY=${mixed}\n`);
  const checked = await run(`${ROOT}/scripts/check-config`, [path.join(dir, 'wrangler.toml'), '--dev-vars', path.join(dir, '.dev.vars')]).catch((e) => e);
  assert.notEqual(checked.code ?? 0, 0, 'check-config fails');
  assert.match(checked.stdout, /ASSERTION_KEY: cannot sign \(private and public keys .* do not match\); generate a new key/);
  await writeFile(path.join(dir, '.dev.vars'), `SESSION_SECRET=${'s'.repeat(40)}\nASSERTION_KEY=${assertionJwk}\n`);
  assert.match((await run(`${ROOT}/scripts/check-config`, [path.join(dir, 'wrangler.toml'), '--dev-vars', path.join(dir, '.dev.vars')])).stdout, /signed with ES256/);
});

test('without ASSERTION_KEY there is no assertion and no key set', async () => {
  const plain = await startStack();
  try {
    const b = new Browser();
    await login(b, `${plain.app}/`);
    const got = (await b.request(`${plain.app}/echo`, { headers: JSON_ACCEPT })).json();
    assert.equal(got.headers['portcullis-assertion'], undefined);
    assert.equal((await b.request(`${plain.app}/.portcullis/jwks.json`, { headers: JSON_ACCEPT })).status, 404);
  } finally {
    await plain.stop();
  }
});
