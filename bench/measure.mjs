// Measuring workerd CPU per request: wrk drives load, CPU time comes from /proc/<pid>/stat.
// workerd is pinned to one core and this process (the upstream app) and wrk to the other,
// so they do not steal each other's caches and time slices; rounds are interleaved and
// the median reported, which keeps run-to-run spread low enough to compare scenarios.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { startWorker } from '../stack/worker.mjs';

const run = promisify(execFile);
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const CORES = cpus().length;

function hasTaskset() {
  try { execFileSync('taskset', ['-V'], { stdio: 'ignore' }); return true; } catch { return false; }
}
const PIN = CORES >= 2 && hasTaskset();
const WORKERD_CORE = '0';
const LOAD_CORES = CORES >= 3 ? `1-${CORES - 1}` : '1';
if (PIN) execFileSync('taskset', ['-a', '-p', '-c', LOAD_CORES, String(process.pid)], { stdio: 'ignore' });

function workerdPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].endsWith('workerd');
    } catch { return false; }
  });
}

/** CPU seconds (user + system) used by a process so far. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Pins a workerd process to the measured core. */
export function pin(pid) {
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', WORKERD_CORE, String(pid)], { stdio: 'ignore' });
}

/** startWorker, plus the pid of the workerd process it started (pinned to its core). */
export async function startMeasuredWorker(options) {
  const before = new Set(workerdPids());
  const worker = await startWorker(options);
  const pid = workerdPids().find((p) => !before.has(p));
  if (!pid) throw new Error('could not find the workerd process');
  if (PIN) execFileSync('taskset', ['-a', '-p', '-c', WORKERD_CORE, pid], { stdio: 'ignore' });
  return { ...worker, pid };
}

function parseWrk(out) {
  const num = (re) => out.match(re)?.[1];
  const toMs = (v) => {
    const m = v?.match(/([\d.]+)(us|ms|s)/);
    return m ? Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]] : NaN;
  };
  return {
    requests: Number(num(/(\d+) requests in/)),
    rps: Number(num(/Requests\/sec:\s+([\d.]+)/)),
    p50: toMs(num(/\s50%\s+([\d.]+\w+)/)),
    p99: toMs(num(/\s99%\s+([\d.]+\w+)/)),
    non2xx: Number(num(/Non-2xx or 3xx responses: (\d+)/) || 0),
    socketErrors: out.match(/Socket errors:.*/)?.[0],
  };
}

/** One wrk run against `target` ({ port, pid }); returns throughput, latency and CPU µs/request. */
export async function wrkRun(target, { host, path = '/', headers = {}, seconds = 5, connections = 10 }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Host: ${host}:${target.port}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`http://127.0.0.1:${target.port}${path}`);
  const cmd = PIN ? ['taskset', ['-c', LOAD_CORES, 'wrk', ...args]] : ['wrk', args];
  const cpu0 = cpuSeconds(target.pid);
  const { stdout } = await run(cmd[0], cmd[1], { maxBuffer: 1 << 20 });
  const cpu = cpuSeconds(target.pid) - cpu0;
  const r = parseWrk(stdout);
  return { ...r, cpuUsPerRequest: (cpu / r.requests) * 1e6 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Measures each scenario `rounds` times, interleaved (A B C A B C …), after a warm-up,
 * and reports the median of each figure. scenarios: { name: { target, host, path, headers } }.
 */
export async function compare(scenarios, { rounds = 3, seconds = 5, connections = 10 } = {}) {
  for (const s of Object.values(scenarios)) await wrkRun(s.target, { ...s, seconds: 1, connections });
  const runs = Object.fromEntries(Object.keys(scenarios).map((k) => [k, []]));
  for (let i = 0; i < rounds; i += 1) {
    for (const [name, s] of Object.entries(scenarios)) runs[name].push(await wrkRun(s.target, { ...s, seconds, connections }));
  }
  return Object.fromEntries(Object.entries(runs).map(([name, rs]) => [name, {
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    cpuUsPerRequest: median(rs.map((r) => r.cpuUsPerRequest)),
    cpuSamples: rs.map((r) => Math.round(r.cpuUsPerRequest)),
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    socketErrors: rs.map((r) => r.socketErrors).filter(Boolean),
  }]));
}

export const pinned = PIN;

/**
 * The floor every benchmark compares against: a pass-through worker that does nothing but
 * forward to `origin` (the URL's origin replaced; method, headers and body passed on;
 * redirects not followed).
 */
export function bareWorker(origin) {
  return `export default { fetch(request) {
  const url = new URL(request.url);
  return fetch('${origin}' + url.pathname + url.search, { method: request.method, headers: request.headers, body: request.body, redirect: 'manual' });
} };`;
}
