// One refresh at a time per grant, wherever it runs: oidc-provider rotates refresh tokens on
// every use and, as Pocket ID does, treats a reused one as theft (it revokes the grant).
// Two gates share the persons' objects; the second reads KV through a view lagging 60 s,
// so it never sees the first one's rotation in KV. Both find the session due at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTwoLocations } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';

const EVERY = 30;
let s;

before(async () => {
  s = await startTwoLocations({ config: { revalidate_every: `${EVERY}s` } });
});
after(async () => { await s?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const me = (b, at = {}) => b.request(`${s.app}/.portcullis/me`, { headers: { accept: 'application/json', ...at } });
const B = { 'x-location': 'b' };

test('two locations due at once: the issuer sees one refresh, and the session lives in both', { timeout: 120_000 }, async () => {
  const b = new Browser('alice');
  assert.equal((await login(b, `${s.app}/`, { username: 'alice' })).status, 200);
  assert.equal((await me(b, B)).status, 200, 'location b has read the session (its KV view keeps it)');
  await sleep((EVERY + 1) * 1000);
  const mark = s.issuerLog.length;
  const both = await Promise.all([me(b), me(b, B)]);
  assert.deepEqual(both.map((r) => r.status), [200, 200], 'served at once in both');
  // Both re-validate after their response; give them time, then use the session in both.
  await sleep(3000);
  const refreshes = s.issuerLog.slice(mark).filter((l) => l === 'grant refresh_token alice-0001');
  assert.equal(refreshes.length, 1, `one refresh: ${s.issuerLog.slice(mark).join(' | ')}`);
  assert.ok(!s.issuerLog.slice(mark).some((l) => l.startsWith('grant error')), 'no reused token');
  for (let i = 0; i < 3; i += 1) {
    assert.equal((await me(b)).status, 200, 'alive at a');
    assert.equal((await me(b, B)).status, 200, 'alive at b');
  }
  assert.ok(!s.worker.lines.some((l) => l.includes('"event":"revalidation_failed"')), 'no location ended it');
});
