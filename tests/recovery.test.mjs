// Crash recovery through the entry module (src/edge/entry.js): after a Rust panic, sync or
// on the future executor, the request fails and the isolate's next requests are answered
// as before. Uses a test-only build with the fault-injection feature (build-fault/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { freePort, SESSION_SECRET, CLIENT_SECRET } from './support/stack.mjs';
import { startWorker, ROOT } from '../stack/worker.mjs';
import { startWorkerdServe } from '../stack/workerd.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { Browser } from '../stack/client.mjs';

const run = promisify(execFile);
const BUILD = path.join(ROOT, 'build-fault');

test('after a panic the isolate recovers: the next requests are answered (plain workerd and Miniflare)', async () => {
  await run(path.join(ROOT, 'scripts/build'), [], {
    env: { ...process.env, PORTCULLIS_BUILD_DIR: 'build-fault', PORTCULLIS_BUILD_FEATURES: 'fault-injection' },
    maxBuffer: 64 << 20,
  });
  const upstream = await startUpstream({ port: await freePort() });
  try {
    for (const runtime of ['workerd', 'miniflare']) {
      const port = await freePort();
      const options = {
        port,
        config: { issuer: 'http://127.0.0.1:9', client_id: 'portcullis', apps: [{ host: 'photos.localhost', origin: upstream.url, public_paths: ['/public'] }] },
        secrets: { SESSION_SECRET, OIDC_CLIENT_SECRET: CLIENT_SECRET },
        build: BUILD,
      };
      const worker = runtime === 'workerd' ? await startWorkerdServe(options) : await startWorker(options);
      try {
        const browser = new Browser();
        const url = `http://photos.localhost:${port}/public`;
        const answered = async (why) => {
          const res = await browser.request(url, { headers: { accept: 'application/json' } });
          assert.equal(res.status, 200, `${runtime}: ${why}`);
        };
        await answered('before any panic');
        for (const kind of ['sync', 'async']) {
          const failed = await browser
            .request(url, { headers: { accept: 'application/json', 'x-portcullis-fault': kind } })
            .catch((e) => ({ status: `connection error: ${e.message}` }));
          assert.notEqual(failed.status, 200, `${runtime}: a ${kind} panic is not answered as a success`);
          for (let i = 0; i < 3; i += 1) await answered(`request ${i + 1} after a ${kind} panic`);
        }
        for (let i = 0; i < 50 && !worker.lines.some((l) => l.includes('Reinitializing Wasm application')); i += 1) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(worker.lines.some((l) => l.includes('Rust panic')), `${runtime}: the panic is logged`);
        assert.ok(worker.lines.some((l) => l.includes('Reinitializing Wasm application')), `${runtime}: the wasm instance was re-initialised`);
      } finally {
        await worker.stop();
      }
    }
  } finally {
    await upstream.stop();
  }
});

test('a build with the test-only fault-injection feature is refused for build/, the deployed directory', async () => {
  const refused = await run(path.join(ROOT, 'scripts/build'), [], {
    env: { ...process.env, PORTCULLIS_BUILD_FEATURES: 'fault-injection' },
  }).then(() => null, (e) => e);
  assert.ok(refused, 'scripts/build must fail');
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /for tests only/);
});
