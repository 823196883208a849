// scripts/setup: the first deployment in one sitting, and every later one. It checks the
// issuer, creates (or reuses) the SESSIONS KV namespace, writes wrangler.toml (showing the
// change first), checks it, puts the secrets, prints what to register at the issuer,
// deploys, and checks the deployment from outside. Running it again changes only what
// differs: the namespace, and SESSION_SECRET (so every session) are kept.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { edit, read } from './wrangler-toml.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const USAGE = `usage: scripts/setup [--issuer URL] [--client-id ID] [--app HOST[=ORIGIN]]...
                     [--zone NAME] [--cookie-domain DOMAIN] [--auth-host HOST]
                     [--config wrangler.toml] [--public-client] [--yes] [--no-verify]
                     [--connect-to ADDRESS:PORT] [--instant-revocation]

Asks for what is not given (unless --yes). Secrets are never printed nor written to disk:
SESSION_SECRET is generated; OIDC_CLIENT_SECRET is asked for without echo (or read from
the environment variable of that name; --public-client for a client without one).
  --app HOST[=ORIGIN]   a protected host, and where its requests go (default: the zone's
                        origin, e.g. your tunnel); repeat for each app
  --zone NAME           the Cloudflare zone of the hosts (default: each host's last two labels)
  --instant-revocation  bind PEOPLE, a Durable Object per person, so a revocation reaches
                        every location within revocation_check (5 s) and closes open
                        WebSockets; without it, up to session_cache + KV's propagation
                        (about 90 s). Asked when not given (Free plan: see docs/operations.md)
  --yes                 no questions: apply what is shown
  --no-verify           do not check the deployment from outside
  --connect-to A:P      check the deployment at this address (plain HTTP) instead of
                        https://<host>, e.g. before DNS is in place`;

class SetupError extends Error {}
const fail = (message) => { throw new SetupError(message); };
const say = (text = '') => process.stdout.write(`${text}\n`);

function parseArgs(argv) {
  const a = { apps: [], config: path.join(ROOT, 'wrangler.toml'), yes: false, verify: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) fail(`${arg} needs a value\n\n${USAGE}`);
      i += 1;
      return v;
    };
    switch (arg) {
      case '--issuer': a.issuer = value(); break;
      case '--client-id': a.clientId = value(); break;
      case '--app': {
        const [host, origin] = value().split(/=(.*)/s);
        a.apps.push({ host: host.trim().toLowerCase(), origin: origin?.trim() || undefined });
        break;
      }
      case '--zone': a.zone = value().toLowerCase(); break;
      case '--cookie-domain': a.cookieDomain = value().toLowerCase(); break;
      case '--auth-host': a.authHost = value().toLowerCase(); break;
      case '--config': a.config = path.resolve(value()); break;
      case '--public-client': a.publicClient = true; break;
      case '--yes': a.yes = true; break;
      case '--instant-revocation': a.instantRevocation = true; break;
      case '--no-verify': a.verify = false; break;
      case '--connect-to': a.connectTo = value(); break;
      case '-h': case '--help': say(USAGE); process.exit(0); break;
      default: fail(`unknown argument ${arg}\n\n${USAGE}`);
    }
  }
  return a;
}

// ---- asking ------------------------------------------------------------------------

const interactive = () => process.stdin.isTTY && process.stdout.isTTY;

async function ask(question, fallback) {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await new Promise((resolve) => rl.question(`${question}${fallback ? ` [${fallback}]` : ''}: `, resolve));
  rl.close();
  return answer.trim() || fallback || '';
}

/** Reads a line without echoing it. */
async function askHidden(question) {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  rl._writeToOutput = () => {}; // nothing typed is shown
  process.stdout.write(`${question}: `);
  const answer = await new Promise((resolve) => rl.question('', resolve));
  rl.close();
  process.stdout.write('\n');
  return answer.trim();
}

async function confirm(a, question) {
  if (a.yes) return true;
  if (!interactive()) fail(`${question} — not asked without a terminal; run with --yes to apply`);
  return /^y(es)?$/i.test(await ask(`${question} (y/N)`, ''));
}

// ---- the issuer --------------------------------------------------------------------

async function discover(issuer) {
  let url;
  try {
    url = new URL(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  } catch {
    fail(`--issuer: "${issuer}" is not a URL; give the issuer's URL, e.g. https://id.example.com`);
  }
  let res;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: 'manual' });
  } catch (err) {
    fail(`The issuer cannot be reached: GET ${url} failed (${err.cause?.code || err.message}). Check the URL and that it is reachable from here.`);
  }
  if (res.status !== 200) fail(`The issuer answered GET ${url} with ${res.status}, not its discovery document. Is "${issuer}" the issuer URL (Authentik's ends with /application/o/<slug>/)?`);
  let doc;
  try {
    doc = await res.json();
  } catch {
    fail(`GET ${url} did not return JSON: that is not an OpenID Connect discovery document.`);
  }
  if (doc.issuer !== issuer) {
    fail(`The issuer at ${url} calls itself "${doc.issuer}", not "${issuer}". Tokens would not match: use --issuer ${JSON.stringify(doc.issuer)}.`);
  }
  if (!doc.authorization_endpoint || !doc.token_endpoint || !doc.jwks_uri) fail(`The discovery document at ${url} lacks authorization_endpoint, token_endpoint or jwks_uri.`);
  return doc;
}

// ---- wrangler ------------------------------------------------------------------------

/** Runs wrangler; `input` goes to its stdin (secrets: never on the command line). */
function wrangler(args, { input, quiet = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['wrangler', ...args], {
      cwd: ROOT,
      env: { WRANGLER_SEND_METRICS: 'false', ...process.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; if (!quiet) process.stdout.write(c); });
    child.stderr.on('data', (c) => { err += c; if (!quiet) process.stderr.write(c); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(input ?? '');
  });
}

async function namespaceId(a, current) {
  if (current && !/^0+$/.test(current)) {
    say(`KV namespace SESSIONS: keeping ${current} (and every session in it)`);
    return current;
  }
  const list = await wrangler(['kv', 'namespace', 'list', '--config', a.config], { quiet: true });
  if (list.code === 0) {
    try {
      const existing = JSON.parse(list.out.slice(list.out.indexOf('['))).find((n) => n.title === 'SESSIONS' || n.title === 'portcullis-SESSIONS');
      if (existing) {
        say(`KV namespace SESSIONS: reusing ${existing.id}`);
        return existing.id;
      }
    } catch { /* not JSON: create below */ }
  }
  if (!(await confirm(a, 'Create the KV namespace SESSIONS?'))) fail('No KV namespace: nothing changed.');
  const created = await wrangler(['kv', 'namespace', 'create', 'SESSIONS', '--config', a.config], { quiet: true });
  const id = created.out.match(/id\s*=\s*"([0-9a-f]{32})"/)?.[1] || created.out.match(/"id":\s*"([0-9a-f]{32})"/)?.[1];
  if (created.code !== 0 || !id) fail(`wrangler kv namespace create SESSIONS failed:\n${created.err || created.out}`);
  say(`KV namespace SESSIONS: created ${id}`);
  return id;
}

/**
 * The names of the Worker's secrets: none when the Worker does not exist yet (Cloudflare's
 * error 10007). Any other failure stops setup: taking it for "no secrets" would generate a
 * new SESSION_SECRET and sign everyone out because of a network error.
 */
async function secretNames(a) {
  const r = await wrangler(['secret', 'list', '--format', 'json', '--config', a.config], { quiet: true });
  const text = `${r.out}\n${r.err ?? ''}`;
  // wrangler 4 says `Worker "<name>" not found.` for the API's error 10007.
  if (r.code !== 0 && /\b10007\b|does not exist|Worker "[^"]*" not found/i.test(text)) return []; // no Worker yet
  const why = r.code !== 0 ? text.trim() : 'it printed no list';
  try {
    if (r.code === 0) return JSON.parse(r.out.slice(r.out.indexOf('['))).map((s) => s.name);
  } catch { /* below */ }
  fail(`could not list the Worker's secrets, so SESSION_SECRET is left as it is (a new one would sign everyone out). Run scripts/setup again once wrangler works:\n${why.slice(-2000)}`);
}

async function putSecret(a, name, value) {
  const r = await wrangler(['secret', 'put', name, '--config', a.config], { input: value, quiet: true });
  if (r.code !== 0) fail(`wrangler secret put ${name} failed:\n${(r.err || r.out).replaceAll(value, '[redacted]')}`);
  say(`secret ${name}: set`);
}

// ---- steps ---------------------------------------------------------------------------

function zoneOf(a) {
  return (host) => a.zone || host.split('.').slice(-2).join('.');
}

async function diff(before, after) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'portcullis-setup-'));
  try {
    await writeFile(path.join(dir, 'before'), before);
    await writeFile(path.join(dir, 'after'), after);
    const child = spawn('diff', ['-u', '--label', 'wrangler.toml (now)', '--label', 'wrangler.toml (new)', 'before', 'after'], { cwd: dir });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    await new Promise((resolve) => child.on('close', resolve));
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('close', (code) => resolve({ code, out }));
  });
}

function registration(a, settings, doc) {
  const hosts = settings.authHost ? [settings.authHost] : settings.apps.map((x) => x.host);
  const callbacks = hosts.map((h) => `https://${h}/.portcullis/callback`);
  const signedOut = hosts.map((h) => `https://${h}/.portcullis/signed-out`);
  const backchannel = `https://${hosts[0]}/.portcullis/backchannel-logout`;
  say('\nRegister Portcullis at the issuer:');
  say(`  callback (redirect) URLs      ${callbacks.join('\n                                ')}`);
  say(`  post-logout redirect URLs     ${signedOut.join('\n                                ')}`);
  if (doc.backchannel_logout_supported) say(`  back-channel logout URL       ${backchannel}  (with "session required")`);
  say('  PKCE (S256)                   on');
  say(`  scopes                        openid profile email groups${doc.scopes_supported?.includes('offline_access') ? ' (offline_access for revalidate_every)' : ''}`);
  say('In Pocket ID (Administration → OIDC Clients → Add OIDC Client):');
  say(`  Name                  Portcullis`);
  say(`  Callback URLs         ${callbacks.join(', ')}`);
  say(`  Logout Callback URLs  ${signedOut.join(', ')}`);
  say(`  Public Client         ${a.publicClient ? 'on' : 'off (Portcullis keeps the client secret)'}`);
  say('  PKCE                  on');
  say('  Allowed User Groups   the groups that may use your apps (optional)');
  say('  then copy its Client ID (--client-id) and Client secret (asked below).');
  say('Details per issuer: docs/issuers/pocket-id.md, authentik.md, keycloak.md.');
}

/** GET /.portcullis/login on the first app: must redirect to the issuer. */
function verify(a, host, doc) {
  const target = a.connectTo
    ? { lib: http, host: a.connectTo.split(':')[0], port: Number(a.connectTo.split(':')[1] || 80) }
    : { lib: https, host, port: 443 };
  return new Promise((resolve) => {
    const req = target.lib.request({
      host: target.host, port: target.port, path: '/.portcullis/login', method: 'GET',
      headers: { host: a.connectTo ? `${host}:${target.port}` : host, accept: 'text/html' },
      servername: host, timeout: 15_000,
    }, (res) => {
      res.resume();
      const location = res.headers.location || '';
      if ([302, 303].includes(res.statusCode) && location.startsWith(doc.authorization_endpoint)) {
        resolve({ ok: true, detail: `${res.statusCode} → ${doc.authorization_endpoint}` });
      } else {
        resolve({ ok: false, detail: `${res.statusCode} ${location || '(no redirect)'}` });
      }
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ ok: false, detail: err.message }));
    req.end();
  });
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const before = await readFile(a.config, 'utf8').catch(() => fail(`${a.config}: cannot read it (give --config)`));
  const now = read(before);

  // What to set up: flags, else the file (on a re-run), else questions.
  const fromFile = (value) => (value && !/example\.com/.test(value) ? value : undefined);
  const need = async (value, question, flag) => {
    if (value) return value;
    if (a.yes || !interactive()) fail(`${flag} is required (or run in a terminal to be asked)`);
    return ask(question);
  };
  a.issuer = await need(a.issuer || fromFile(now.issuer), 'Issuer URL (e.g. https://id.example.com)', '--issuer');
  const doc = await discover(a.issuer);
  say(`issuer ${a.issuer}: discovery OK`);
  a.clientId = await need(a.clientId || (fromFile(now.issuer) ? now.clientId : undefined), 'Client ID', '--client-id');
  if (!a.apps.length) {
    const existing = now.apps.filter((x) => fromFile(x.host));
    if (existing.length) a.apps = existing.map((x) => ({ host: x.host }));
    else {
      const answer = await need('', 'App hosts, comma-separated, each optionally =origin (e.g. photos.example.net=http://10.0.0.5:2283)', '--app');
      a.apps = answer.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const [host, origin] = s.split(/=(.*)/s);
        return { host: host.toLowerCase(), origin: origin || undefined };
      });
    }
  }
  if (!a.apps.length) fail('at least one --app is required');

  const kvId = await namespaceId(a, now.kvId);
  if (!a.instantRevocation && !now.people && !a.yes && interactive()) {
    const answer = await ask('Instant revocation: a Durable Object per person, so signing someone out reaches every location within 5 s (else about 90 s)? (y/n)', 'y');
    a.instantRevocation = !/^n/i.test(answer);
  }
  const settings = { issuer: a.issuer, clientId: a.clientId, apps: a.apps, cookieDomain: a.cookieDomain, authHost: a.authHost, kvId, zone: zoneOf(a), instantRevocation: a.instantRevocation };
  const after = edit(before, settings);
  if (after === before) say('wrangler.toml: no changes');
  else {
    say(await diff(before, after));
    if (!(await confirm(a, `Write these changes to ${path.relative(process.cwd(), a.config) || a.config}?`))) fail('Nothing written.');
    await writeFile(a.config, after);
    say('wrangler.toml: written');
  }
  const check = await run(path.join(ROOT, 'scripts/check-config'), [a.config]);
  say(check.out.trimEnd());
  if (check.code !== 0) fail('scripts/check-config found problems (above): fix them and run scripts/setup again.');

  // Secrets first, so the deployed gate is never without them.
  const names = await secretNames(a);
  if (names.includes('SESSION_SECRET')) say('secret SESSION_SECRET: kept (replacing it would sign everyone out)');
  else await putSecret(a, 'SESSION_SECRET', randomBytes(48).toString('base64url'));
  const full = read(after);
  registration(a, { ...full, authHost: a.authHost || full.authHost }, doc);
  if (names.includes('OIDC_CLIENT_SECRET')) say('secret OIDC_CLIENT_SECRET: kept');
  else if (!a.publicClient) {
    let secret = process.env.OIDC_CLIENT_SECRET;
    if (!secret && interactive()) secret = await askHidden('\nOIDC client secret (empty: a public client without one)');
    if (secret) await putSecret(a, 'OIDC_CLIENT_SECRET', secret);
    else say('secret OIDC_CLIENT_SECRET: none (a public client: PKCE alone)');
  }

  if (!(await confirm(a, 'Deploy now with wrangler deploy?'))) fail('Not deployed; run `npx wrangler deploy` when ready.');
  const deployed = await wrangler(['deploy', '--config', a.config]);
  if (deployed.code !== 0) fail('wrangler deploy failed (above).');

  if (!a.verify) return say('\nDeployed (not checked from outside: --no-verify).');
  const host = a.apps[0].host;
  let result;
  for (let i = 0; i < 6; i += 1) { // a new route can take a few seconds
    result = await verify(a, host, doc);
    if (result.ok) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  if (!result.ok) fail(`Deployed, but https://${host}/.portcullis/login did not redirect to the issuer: ${result.detail}. Check the route and DNS of ${host}.`);
  say(`\nDeployed and checked: https://${host}/.portcullis/login answers ${result.detail}.`);
  return undefined;
}

main().catch((err) => {
  if (err instanceof SetupError) {
    process.stderr.write(`\nscripts/setup: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`\nscripts/setup: unexpected error: ${err.stack || err}\n`);
  process.exit(2);
});
