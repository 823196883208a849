// The README's first command, for real: scripts/dev starts the local issuer, the demo app
// and the gate under `wrangler dev`; a user signs in; scripts/revoke (through wrangler's
// KV commands on the same local state) ends the session and leaves its tombstone. Uses
// the fixed ports of dev/wrangler.toml (8787, 9400, 9401), so a running scripts/dev must
// be stopped first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { Browser, login } from '../stack/client.mjs';
import { ROOT } from '../stack/worker.mjs';

const run = promisify(execFile);
const APP = 'http://photos.portcullis.localhost:8787';
const AUTH = 'http://auth.portcullis.localhost:8787';
const REVOKE = [`${ROOT}/scripts/revoke`, '--local', '--config', 'dev/wrangler.toml'];

const portFree = (port) => new Promise((resolve) => {
  const srv = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
});

test('scripts/dev serves a working login; scripts/revoke ends the session', { timeout: 240_000 }, async () => {
  for (const port of [8787, 9400, 9401]) {
    assert.ok(await portFree(port), `port ${port} is taken: stop a running scripts/dev before the tests`);
  }
  const dev = spawn(`${ROOT}/scripts/dev`, [], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORTCULLIS_DEV_NO_BUILD: '1' },
  });
  let output = '';
  dev.stdout.on('data', (c) => { output += c; });
  dev.stderr.on('data', (c) => { output += c; });
  try {
    let ready = false;
    for (let i = 0; i < 120 && !ready; i += 1) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        ready = (await new Browser().request(`${APP}/`, { headers: { accept: 'text/html' } })).status === 303;
      } catch { /* not listening yet */ }
    }
    assert.ok(ready, `scripts/dev did not come up:\n${output.slice(-3000)}`);
    assert.match(output, /Open\s+http:\/\/photos\.portcullis\.localhost:8787/, 'it prints the URL to open');

    const b = new Browser('alice', { 'user-agent': 'DevTest/1.0' });
    const done = await login(b, `${APP}/albums`, { username: 'alice' });
    assert.equal(done.status, 200);
    assert.match(done.body, /Signed in as <b>alice@example\.com<\/b>/, 'the demo app shows who signed in');
    const me = await b.request(`${APP}/.portcullis/me`, { headers: { accept: 'application/json' } });
    assert.equal(me.status, 200);
    // dev/wrangler.toml binds PEOPLE: the signed-in request asked the person's object.
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(output, /person_object_unreachable|revoked_without_person_object/, 'the persons\' objects answer in scripts/dev');

    // The whole product: one login for both apps, app passwords on the auth host's
    // account page, and alice's admin console (after signing in again: the console
    // needs a fresh login).
    const sonarr = await b.request('http://sonarr.portcullis.localhost:8787/', { headers: { accept: 'application/json' } });
    assert.equal(sonarr.status, 200, 'the same session opens the other demo app');
    const account = await b.follow(`${APP}/.portcullis/account`);
    assert.equal(new URL(account.url).origin, AUTH, 'self-service lives on the auth host');
    assert.match(account.body, /<option value="photos\.portcullis\.localhost">/, 'app passwords can be created for photos');
    const opened = await login(b, `${AUTH}/.portcullis/admin`, { username: 'alice' });
    assert.equal(opened.status, 200, opened.body.slice(0, 300));
    assert.match(opened.body, /Admin console/);
    const fresh = await b.request(`${APP}/.portcullis/me`, { headers: { accept: 'application/json' } });
    const hash = fresh.json().session_id_hash;

    const listed = await run(REVOKE[0], [...REVOKE.slice(1), '--email', 'alice@example.com', '--list'], { cwd: ROOT });
    assert.match(listed.stdout, new RegExp(hash));
    assert.match(listed.stdout, /DevTest\/1\.0/);

    const revoked = await run(REVOKE[0], [...REVOKE.slice(1), '--email', 'alice@example.com'], { cwd: ROOT });
    assert.match(revoked.stdout, /Revoked [1-9]\d* session\(s\)/);
    assert.match(revoked.stderr, /binds PEOPLE/, 'it says what it cannot reach');
    // The index as the next listing sees it: KV listings may lag a write (here, the dev
    // server's and wrangler's views of the local store), so a few tries, a second apart.
    let after = { stdout: '' };
    for (let i = 0; i < 5 && !/No matching sessions/.test(after.stdout); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1000));
      after = await run(REVOKE[0], [...REVOKE.slice(1), '--email', 'alice@example.com', '--list'], { cwd: ROOT });
    }
    assert.match(after.stdout, /No matching sessions/, `listed before:\n${listed.stdout}\nrevoked:\n${revoked.stdout}\ndev:\n${output.slice(-4000)}`);
    // A tombstone, as the worker's own revocation writes, so that a re-validation in flight
    // cannot write the session back.
    const tombstone = await run('npx', ['wrangler', 'kv', 'key', 'get', `revoked:${hash}`, '--text', '--binding', 'SESSIONS', '--local', '--config', 'dev/wrangler.toml'], { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
    assert.equal(tombstone.stdout.trim(), 'revoked');

    // The running isolate may trust its cached copy for session_cache (30 s), no longer.
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 40_000) {
      status = (await b.request(`${APP}/.portcullis/me`, { headers: { accept: 'application/json' } })).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(status, 401, 'the revoked session is refused within the documented bound');
  } finally {
    try { process.kill(-dev.pid, 'SIGTERM'); } catch { /* already gone */ }
    await new Promise((r) => setTimeout(r, 1000));
    try { process.kill(-dev.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});
