// A second, independent OpenID provider for the tests: LemonLDAP::NG (OpenID certified),
// from Debian's packages (scripts/install-tools --lemonldap), its portal served by Starman
// on a loopback port, with the Demo authentication backend (users dwho, rtyler, msmith;
// each one's password is the login name). Its configuration is the package's own default
// with the settings of docs/issuers/lemonldap-ng.md, written to a temporary directory.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { collectLines } from './worker.mjs';

export const PORTAL_PSGI = '/usr/share/lemonldap-ng/portal/htdocs/index.psgi';
const DEFAULT_CONF = '/var/lib/lemonldap-ng/conf/lmConf-1.json';
const DEFAULT_INI = '/etc/lemonldap-ng/lemonldap-ng.ini';

/** Whether LemonLDAP::NG and Starman are installed. */
export function lemonldapInstalled() {
  return [PORTAL_PSGI, DEFAULT_CONF, DEFAULT_INI, '/usr/bin/starman'].every((f) => fs.existsSync(f));
}

/**
 * Starts the portal as the issuer `http://127.0.0.1:<port>/` (with the slash, as
 * LemonLDAP::NG names itself), with one client `portcullis` for the given callback URLs.
 * options.signedOut: post-logout redirect URI; options.secret: the client secret;
 * options.alg: the ID token signing algorithm (RS256 unless given).
 */
export async function startLemonldap({ port, callbacks, signedOut, secret, alg = 'RS256' }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'portcullis-llng-'));
  for (const d of ['conf', 'sessions/lock', 'psessions/lock', 'cache', 'notifications']) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const portal = `http://127.0.0.1:${port}/`;
  const conf = JSON.parse(fs.readFileSync(DEFAULT_CONF, 'utf8'));
  Object.assign(conf, {
    cfgNum: 1,
    portal,
    domain: '127.0.0.1',
    securedCookie: 0,
    globalStorageOptions: { ...conf.globalStorageOptions, Directory: path.join(dir, 'sessions'), LockDirectory: path.join(dir, 'sessions/lock') },
    persistentStorageOptions: { Directory: path.join(dir, 'psessions'), LockDirectory: path.join(dir, 'psessions/lock') },
    localSessionStorageOptions: { ...conf.localSessionStorageOptions, cache_root: path.join(dir, 'cache') },
    notificationStorageOptions: { dirName: path.join(dir, 'notifications') },
    // Groups of its own besides the Demo backend's, so access rules have something to use.
    groups: { family: "$uid eq 'dwho' or $uid eq 'rtyler'" },
    macros: { ...conf.macros, mailVerified: '1' },
    issuerDBOpenIDConnectActivation: 1,
    oidcServiceIgnoreScopeForClaims: 0,
    oidcServicePrivateKeySig: privateKey.export({ type: 'pkcs1', format: 'pem' }),
    oidcServicePublicKeySig: publicKey.export({ type: 'spki', format: 'pem' }),
    oidcServiceKeyIdSig: 'llng-test',
    oidcRPMetaDataOptions: {
      portcullis: {
        oidcRPMetaDataOptionsClientID: 'portcullis',
        oidcRPMetaDataOptionsClientSecret: secret,
        oidcRPMetaDataOptionsRedirectUris: callbacks.join(' '),
        oidcRPMetaDataOptionsPostLogoutRedirectUris: signedOut,
        oidcRPMetaDataOptionsIDTokenSignAlg: alg,
        oidcRPMetaDataOptionsBypassConsent: 1,
        oidcRPMetaDataOptionsRefreshToken: 1,
        oidcRPMetaDataOptionsAccessTokenJWT: 1,
      },
    },
    oidcRPMetaDataExportedVars: {
      portcullis: {
        email: 'mail',
        name: 'cn',
        preferred_username: 'uid',
        groups: 'groups;string;always',
        email_verified: 'mailVerified;bool',
      },
    },
    oidcRPMetaDataOptionsExtraClaims: { portcullis: { groups: 'groups' } },
  });
  fs.writeFileSync(path.join(dir, 'conf/lmConf-1.json'), JSON.stringify(conf, null, 1));
  const ini = fs.readFileSync(DEFAULT_INI, 'utf8')
    .replaceAll('/var/lib/lemonldap-ng/conf', path.join(dir, 'conf'))
    .replaceAll('/var/lib/lemonldap-ng/cache', path.join(dir, 'cache'));
  fs.writeFileSync(path.join(dir, 'lemonldap-ng.ini'), ini);

  const lines = [];
  const child = spawn('/usr/bin/starman', ['--listen', `127.0.0.1:${port}`, '--workers', '2', PORTAL_PSGI], {
    env: { ...process.env, LLNG_DEFAULTCONFFILE: path.join(dir, 'lemonldap-ng.ini') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  collectLines(child.stdout, lines);
  collectLines(child.stderr, lines);
  const stop = async () => {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    await rm(dir, { recursive: true, force: true });
  };
  // Ready once discovery answers (bounded: 20 s).
  const discovery = `${portal}.well-known/openid-configuration`;
  for (let i = 0; ; i += 1) {
    try {
      const res = await fetch(discovery);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (i >= 200 || child.exitCode !== null) {
      await stop();
      throw new Error(`LemonLDAP::NG did not start:\n${lines.slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: portal, lines, stop };
}

/**
 * Signs in at the portal's login form shown by `page` (a response of `browser`), as a
 * browser submits it (with a Content-Length: the portal's body parser mishandles chunked
 * uploads), and follows the redirects that come back.
 */
export async function submitPortalLogin(browser, page, user = 'dwho', password = user) {
  const inputs = [...page.body.matchAll(/<input[^>]*>/g)].map((m) => m[0]);
  const hidden = Object.fromEntries(inputs
    .filter((tag) => /type="hidden"/.test(tag))
    .map((tag) => [tag.match(/name="(\w+)"/)?.[1], tag.match(/value="([^"]*)"/)?.[1] ?? ''])
    .filter(([name]) => name));
  if (!('token' in hidden)) throw new Error(`no portal login form at ${page.url}: ${page.status} ${page.body.slice(0, 300)}`);
  const form = new URLSearchParams({ ...hidden, user, password }).toString();
  const res = await browser.request(page.url.split('#')[0], {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(form)), accept: 'text/html' },
    body: form,
  });
  return res.location ? browser.follow(res.location) : res;
}
