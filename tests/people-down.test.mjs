// When a person's object answers badly: the real worker in workerd with PEOPLE bound to a
// stand-in class Person that answers its first question with a 500 and throws on every
// later one (as an object on other code, or a failing one, would). The gate must treat
// both as an unreachable object: KV's word stands, it says so in the log, and a
// revocation still ends the credential through KV.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, ADMIN_TOKEN } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';

const STAND_IN = `
import { DurableObject } from 'cloudflare:workers';
export class Person extends DurableObject {
  async fetch() {
    this.asked = (this.asked || 0) + 1;
    console.log('stand-in question ' + this.asked);
    if (this.asked === 1) return new Response('storage failed: stand-in', { status: 500 });
    throw new Error('stand-in object down');
  }
}
export default { fetch: () => new Response('stand-in') };
`;

let s;
before(async () => {
  s = await startStack({
    people: { standIn: STAND_IN },
    config: { revocation_check: '1s' },
    secrets: { ADMIN_TOKEN },
  });
});
after(async () => { await s?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const JSON_ACCEPT = { accept: 'application/json' };

test('an object that answers 500 or throws is taken as unreachable: KV decides, the log says so, revocation still ends the session', async () => {
  const mark = s.worker.lines.length;
  const b = new Browser('alice');
  // The first request after the login asks the object: answered 500.
  assert.equal((await login(b, `${s.app}/`, { username: 'alice' })).status, 200);
  // Three more checks (revocation_check 1 s), each answered by a throw.
  for (let i = 0; i < 3; i += 1) {
    const r = await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
    assert.equal(r.status, 200, `served on KV's word (${i}): ${r.body}`);
    await sleep(1100);
  }
  const said = s.worker.lines.slice(mark).filter((l) => l.includes('person_object_unreachable'));
  assert.equal(said.length, 1, `said once a minute at most: ${said.join('\n')}`);
  assert.match(said[0], /answered 500/);
  assert.ok(s.worker.lines.some((l) => l.includes('stand-in question 3')), 'the object was asked again, and threw');

  const revoked = await new Browser().request(`${s.app}/.portcullis/admin/revoke`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...JSON_ACCEPT },
    body: JSON.stringify({ email: 'alice@example.com' }),
  });
  assert.equal(revoked.status, 200, revoked.body);
  assert.ok(JSON.parse(revoked.body).revoked >= 1, revoked.body);
  const unrecorded = s.worker.lines.slice(mark).filter((l) => l.includes('revoked_without_person_object'));
  assert.ok(unrecorded.length > 0, 'the revocation says the object did not record it');
  assert.match(unrecorded[0], /stand-in object down/, 'with what the object threw');
  const after = await b.request(`${s.app}/.portcullis/me`, { headers: JSON_ACCEPT });
  assert.equal(after.status, 401, after.body);
});
