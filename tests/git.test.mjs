// Clients that wait for a challenge: the real `git` clones and pushes through the gate with
// an app password in its credential helper. libcurl sends Basic credentials only after a
// 401 that offers Basic, so a request without credentials must get that challenge (RFC 9110
// §11.6.1), while a browser is still sent to the login.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startStack } from './support/stack.mjs';
import { Browser, login } from '../stack/client.mjs';
import { startGitServer } from '../stack/git-server.mjs';
import { freePort } from '../stack/ports.mjs';
import { createAppPassword } from './support/app-passwords.mjs';

const run = promisify(execFile);
let s;
let gitServer;
let dir;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'portcullis-git-'));
  await run('git', ['init', '-q', '--bare', '-b', 'main', path.join(dir, 'repos', 'family.git')]);
  await run('git', ['-C', path.join(dir, 'repos', 'family.git'), 'config', 'http.receivepack', 'true']);
  gitServer = await startGitServer({ port: await freePort(), root: path.join(dir, 'repos') });
  s = await startStack({
    authHost: true,
    apps: [{ host: 'git.localhost', origin: gitServer.url, app_passwords: true }],
  });
});
after(async () => {
  await s?.stop();
  await gitServer?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `git` with a credential helper answering `id`/`secret`, and git.localhost on loopback. */
function git(args, { cwd = dir, id, secret } = {}) {
  const port = new URL(s.at('git.localhost')).port;
  const helper = id ? `!f() { echo username=${id}; echo password=${secret}; }; f` : '';
  return run('git', [
    '-c', `credential.helper=${helper}`,
    '-c', `http.curloptResolve=git.localhost:${port}:127.0.0.1`,
    '-c', 'user.name=Alice', '-c', 'user.email=alice@example.com',
    ...args,
  ], { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', HOME: dir } });
}

test('a request without credentials: programs get the Basic challenge, browsers the login', async () => {
  const url = `${s.at('git.localhost')}/family.git/info/refs?service=git-upload-pack`;
  const program = await new Browser().request(url, { headers: { 'user-agent': 'git/2.47' } });
  assert.equal(program.status, 401);
  assert.match(program.headers['www-authenticate'] ?? '', /^Basic realm="Portcullis"/);
  const page = await new Browser().request(`${s.at('git.localhost')}/`, {
    headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' },
  });
  assert.equal(page.status, 303, 'a browser navigation goes to the login');
  const xhr = await new Browser().request(url, { headers: { accept: 'application/json', 'sec-fetch-mode': 'cors' } });
  assert.equal(xhr.status, 401);
  assert.equal(xhr.headers['www-authenticate'], undefined, 'no password dialog over a page');
});

test('git clones and pushes with an app password in its credential helper', { timeout: 120_000 }, async () => {
  const b = new Browser('alice');
  const signedIn = await login(b, `${s.at('git.localhost')}/family.git/info/refs?service=git-upload-pack`, { username: 'alice' });
  assert.equal(signedIn.status, 200, signedIn.body.slice(0, 200));
  const { id, secret } = await createAppPassword(b, s.at('git.localhost'), { app: 'git.localhost', label: 'git on the laptop' });
  const remote = `${s.at('git.localhost')}/family.git`;

  await git(['clone', '-q', remote, 'work'], { id, secret });
  const work = path.join(dir, 'work');
  await writeFile(path.join(work, 'README'), 'recipes\n');
  await git(['add', 'README'], { cwd: work });
  await git(['commit', '-q', '-m', 'first'], { cwd: work });
  await git(['push', '-q', 'origin', 'HEAD:main'], { cwd: work, id, secret });
  const { stdout } = await git(['ls-remote', remote], { id, secret });
  assert.match(stdout, /refs\/heads\/main/, 'the push arrived');

  // A wrong secret is refused.
  const refused = await git(['ls-remote', remote], { id, secret: `${secret.slice(0, -2)}xx` }).then(() => null, (e) => e);
  assert.ok(refused, 'a wrong app password must not list the repository');
  assert.match(refused.stderr, /Authentication failed|401/);
});
