// scripts/revoke: lists and deletes sessions straight in the SESSIONS namespace through
// wrangler, for an operator with Cloudflare credentials but no ADMIN_TOKEN.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const USAGE = `usage: scripts/revoke (--email ADDRESS | --sub SUB | --session HASH | --all) [--list]
                      [--local] [--config wrangler.toml] [--env NAME] [--persist-to DIR]

  --list        only show the matching sessions
  --local       the local development state (scripts/dev): add --config dev/wrangler.toml

Deletes the session records and their index keys. Running isolates may still accept a
deleted session for up to session_cache (default 30 s), and KV deletions take up to about
60 s to reach every location; the admin API and the sessions page also clear the isolate
that serves them.`;

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name) => args.includes(name);
const email = opt('--email');
const sub = opt('--sub');
const session = opt('--session');
const all = flag('--all');
if ([email, sub, session, all || undefined].filter((x) => x !== undefined).length !== 1 || flag('--help')) {
  console.error(USAGE);
  process.exit(2);
}

const wranglerArgs = ['--binding', 'SESSIONS'];
for (const name of ['--config', '--env', '--persist-to']) if (opt(name)) wranglerArgs.push(name, opt(name));
wranglerArgs.push(flag('--local') ? '--local' : '--remote');

function wrangler(...rest) {
  return execFileSync('npx', ['wrangler', 'kv', ...rest, ...wranglerArgs], {
    encoding: 'utf8',
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

const hash = (text) => createHash('sha256').update(text).digest('base64url');
const prefix = sub !== undefined ? `user:${hash(sub)}:` : 'user:';
const listed = JSON.parse(wrangler('key', 'list', '--prefix', prefix));
const sessions = listed
  .map((k) => ({ key: k.name, hash: k.name.split(':').pop(), ...(k.metadata || {}) }))
  .filter((s) => (email === undefined || (s.email || '').toLowerCase() === email.toLowerCase()))
  .filter((s) => (session === undefined || s.hash === session));

const when = (t) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 16);
if (sessions.length === 0) {
  console.log('No matching sessions.');
} else {
  for (const s of sessions) {
    console.log(`${s.hash}  ${s.email || s.sub}  ${s.host}  since ${when(s.created)}  until ${when(s.expires)}  ${s.user_agent || ''}`.trimEnd());
  }
}
if (flag('--list')) process.exit(0);

const keys = sessions.flatMap((s) => [`session:${s.hash}`, s.key, ...(s.sid ? [`sid:${hash(s.sid)}:${s.hash}`] : [])]);
if (session !== undefined && sessions.length === 0) keys.push(`session:${session}`);
if (keys.length > 0) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-revoke-'));
  try {
    const file = path.join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify(keys));
    wrangler('bulk', 'delete', file, '--force');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`Revoked ${sessions.length} session(s).`);
