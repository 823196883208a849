// A fresh isolate's CPU: its first request and first logins, then logins once warm, for one
// or more builds of the worker (A/B runs for changes to code layout or build settings).
// Each round starts a new Miniflare worker per build, interleaved, and reports medians.
//
//   node bench/login-cpu.mjs                          # build/
//   BUILDS=build,/tmp/other-build ROUNDS=7 node bench/login-cpu.mjs
//
// CPU is the sum over the workerd process's threads (/proc/<pid>/task/*/schedstat, in
// nanoseconds), so V8's background compilation counts as well.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startIssuer, gateClient } from '../stack/issuer.mjs';
import { startUpstream } from '../stack/upstream.mjs';
import { ROOT } from '../stack/worker.mjs';
import { Browser, login } from '../stack/client.mjs';
import { freePort } from '../stack/ports.mjs';
import { startMeasuredWorker } from './measure.mjs';

const builds = (process.env.BUILDS || 'build').split(',').map((b) => path.resolve(ROOT, b));
const ROUNDS = Number(process.env.ROUNDS || 5);
const host = 'photos.localhost';

/** On-CPU seconds of every live thread of `pid`. */
function threadCpuSeconds(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch { /* the thread ended */ }
  }
  return ns / 1e9;
}

const ports = await Promise.all(builds.map(() => freePort()));
const clients = ports.map((port) => gateClient({ hosts: [host], port, secret: 'login-cpu-secret' }));
for (const c of clients.slice(1)) clients[0].redirect_uris.push(...c.redirect_uris);
const issuer = await startIssuer({ port: await freePort(), clients: [clients[0]] });
const upstream = await startUpstream({ port: await freePort() });
const config = { issuer: issuer.url, client_id: 'portcullis', apps: [{ host, origin: upstream.url }] };
const secrets = { SESSION_SECRET: 'login-cpu-session-secret-0123456789abcdef01234', OIDC_CLIENT_SECRET: 'login-cpu-secret' };

const results = builds.map(() => ({ firstRequest: [], firstLogins: [], warmLogins: [] }));
const logins = async (port, n) => {
  for (let i = 0; i < n; i += 1) {
    const landed = await login(new Browser(), `http://${host}:${port}/bench`);
    if (landed.status !== 200) throw new Error(`login through port ${port} failed: ${landed.status}`);
  }
};
try {
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [i, build] of builds.entries()) {
      const worker = await startMeasuredWorker({ port: ports[i], config, secrets, build, kvProbe: false });
      try {
        const cpu = () => threadCpuSeconds(worker.pid) * 1000;
        let at = cpu();
        await new Browser().request(`http://${host}:${ports[i]}/api/first`, { headers: { accept: 'application/json' } });
        // Let background compilation started by the first request finish.
        await new Promise((resolve) => setTimeout(resolve, 300));
        results[i].firstRequest.push(cpu() - at);
        at = cpu();
        await logins(ports[i], 5);
        results[i].firstLogins.push((cpu() - at) / 5);
        await logins(ports[i], 15);
        at = cpu();
        await logins(ports[i], 5);
        results[i].warmLogins.push((cpu() - at) / 5);
      } finally {
        await worker.stop();
      }
    }
  }
} finally {
  await issuer.stop();
  await upstream.stop();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (xs) => `${median(xs).toFixed(1)} ms (${xs.map((x) => x.toFixed(1)).join(' ')})`;
console.log(`workerd CPU under Miniflare, medians of ${ROUNDS} fresh workers per build:`);
for (const [i, build] of builds.entries()) {
  console.log(`${path.relative(ROOT, build) || build}:`);
  console.log(`  first request (compile, configuration, a 401):  ${ms(results[i].firstRequest)}`);
  console.log(`  per login, first 5 logins:                      ${ms(results[i].firstLogins)}`);
  console.log(`  per login, 5 logins after 20:                   ${ms(results[i].warmLogins)}`);
}
process.exit(0);
