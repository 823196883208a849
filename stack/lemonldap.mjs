// A second, independent OpenID provider for the tests: LemonLDAP::NG (OpenID certified),
// from Debian's packages (scripts/install-tools --lemonldap), its portal served by Starman
// on a loopback port, with the Demo authentication backend (users dwho, rtyler, msmith;
// each one's password is the login name). Its configuration, written to a temporary
// directory, is the package's default (Demo backend, file storage) with the settings of
// docs/issuers/lemonldap-ng.md. It is written out here in full rather than read from
// /var/lib/lemonldap-ng and /etc/lemonldap-ng, which only root and www-data may read.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { collectLines } from './worker.mjs';

export const PORTAL_PSGI = '/usr/share/lemonldap-ng/portal/htdocs/index.psgi';
const TEMPLATES = '/usr/share/lemonldap-ng/portal/templates';

/** Whether LemonLDAP::NG and Starman are installed. */
export function lemonldapInstalled() {
  return [PORTAL_PSGI, TEMPLATES, '/usr/bin/starman'].every((f) => fs.existsSync(f));
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
  const conf = {
    cfgNum: 1,
    cfgAuthor: 'Portcullis tests',
    cfgVersion: '2.16.1',
    cfgDate: String(Math.floor(Date.now() / 1000)),
    portal,
    domain: '127.0.0.1',
    securedCookie: 0,
    cookieName: 'lemonldap',
    timeout: 72000,
    authentication: 'Demo',
    userDB: 'Same',
    passwordDB: 'Demo',
    registerDB: 'Demo',
    demoExportedVars: { cn: 'cn', mail: 'mail', uid: 'uid' },
    exportedVars: {},
    whatToTrace: '_whatToTrace',
    portalSkin: 'bootstrap',
    loginHistoryEnabled: 1,
    notification: 0,
    sessionDataToRemember: {},
    locationRules: {},
    globalStorage: 'Apache::Session::File',
    globalStorageOptions: {
      Directory: path.join(dir, 'sessions'),
      LockDirectory: path.join(dir, 'sessions/lock'),
      generateModule: 'Lemonldap::NG::Common::Apache::Session::Generate::SHA256',
    },
    persistentStorage: 'Apache::Session::File',
    persistentStorageOptions: { Directory: path.join(dir, 'psessions'), LockDirectory: path.join(dir, 'psessions/lock') },
    localSessionStorage: 'Cache::FileCache',
    localSessionStorageOptions: {
      cache_depth: 3, cache_root: path.join(dir, 'cache'), default_expires_in: 600, directory_umask: '007', namespace: 'lemonldap-ng-sessions',
    },
    notificationStorage: 'File',
    notificationStorageOptions: { dirName: path.join(dir, 'notifications') },
    // Groups of its own besides the Demo backend's, so access rules have something to use.
    groups: { family: "$uid eq 'dwho' or $uid eq 'rtyler'" },
    macros: {
      _whatToTrace: "$_auth eq 'SAML' ? lc($_user.'@'.$_idpConfKey) : $_auth eq 'OpenIDConnect' ? lc($_user.'@'.$_oidc_OP) : lc($_user)",
      mailVerified: '1',
    },
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
  };
  fs.writeFileSync(path.join(dir, 'conf/lmConf-1.json'), JSON.stringify(conf, null, 1));
  fs.writeFileSync(path.join(dir, 'lemonldap-ng.ini'), [
    '[all]',
    'logLevel = warn',
    'checkTime = 1',
    '[configuration]',
    'type = File',
    `dirName = ${path.join(dir, 'conf')}`,
    'localStorage = Cache::FileCache',
    `localStorageOptions = { 'namespace' => 'lemonldap-ng-config', 'default_expires_in' => 600, 'directory_umask' => '007', 'cache_root' => '${path.join(dir, 'cache')}', 'cache_depth' => 3 }`,
    '[portal]',
    'staticPrefix = /static',
    `templateDir = ${TEMPLATES}`,
    'languages = en',
    '[handler]',
    'status = 0',
    'useRedirectOnError = 1',
    '',
  ].join('\n'));

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
      // Its first complaints say why; the later ones only repeat that it failed.
      const why = lines.filter((l) => !l.includes('Initialization failed!')).slice(0, 20);
      throw new Error(`LemonLDAP::NG did not start:\n${why.join('\n')}`);
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
