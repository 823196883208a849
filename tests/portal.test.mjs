// The portal on its own origin, in a real browser (headless chromium): self-service and the
// admin console live on the auth host; a script on a protected app can neither read them
// nor act through them; the owner's admins end other people's sessions and app passwords.
// Hosts are under portcullis.localhost (Chromium refuses a `Domain=localhost` cookie).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from './support/stack.mjs';
import { launch } from './support/chromium.mjs';
import { Browser } from '../stack/client.mjs';

let s;
let browser;
before(async () => {
  s = await startStack({
    domain: 'portcullis.localhost',
    authHost: true,
    photos: { app_passwords: true },
    config: { admin_groups: ['admins'] },
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await s?.stop();
});

const PHOTOS = 'photos.portcullis.localhost';

/** Fills the issuer's login form on `page` and waits until the browser is back at `url`. */
async function signIn(page, user, url) {
  await page.fill('#username', user);
  await page.fill('#password', user);
  await Promise.all([page.waitForURL(url), page.click('#submit')]);
}

/** A browser signed in as `user` from the photos app. */
async function signedIn(user, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await page.goto(`${s.app}/`);
  await signIn(page, user, `${s.app}/`);
  return { context, page };
}

/** The account page's creation form, then the issuer again (the login is not known to be recent). */
async function createAppPassword(page, label, user) {
  await page.goto(`${s.auth}/.portcullis/account`);
  await page.selectOption('select[name=app]', PHOTOS);
  await page.fill('input[name=label]', label);
  await page.fill('input[name=lifetime]', '30d');
  await Promise.all([page.waitForURL(/\/interaction\//), page.click('button:has-text("Create app password")')]);
  await page.fill('#username', user);
  await page.fill('#password', user);
  await Promise.all([page.waitForURL(/\/\.portcullis\/callback/), page.click('#submit')]);
  return { id: await page.textContent('[data-client-id]'), secret: await page.textContent('[data-secret]') };
}

/** The photos API as a phone app calls it with an app password. */
function asPhone({ id, secret }) {
  return new Browser('phone').request(`${s.app}/api/assets`, {
    headers: { accept: 'application/json', 'portcullis-client-id': id, 'portcullis-client-secret': secret },
    cookies: false,
  });
}

/** The console, opened as an admin whose login is not known to be recent: the issuer asks again. */
async function openConsole(page, user) {
  await page.goto(`${s.auth}/.portcullis/admin`);
  assert.ok(page.url().startsWith(`${s.issuer.url}/interaction/`), `the issuer asks first: ${page.url()}`);
  await signIn(page, user, `${s.auth}/.portcullis/admin`);
}

const fits = async (page, what) => {
  const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `${what}: ${scroll} px wide in a ${inner} px window`);
};

test('a script on a protected app gets no CSRF token and no app password; the person creates one on the auth host', async () => {
  const { context, page } = await signedIn('alice');
  const marks = s.worker.lines.length;
  const attack = await page.evaluate(async (auth) => {
    const tried = {};
    const read = async (name, url, init) => {
      try {
        const r = await fetch(url, { credentials: 'include', ...init });
        tried[name] = `${r.status} ${r.type} ${(await r.text()).includes('name="csrf"') ? 'CSRF TOKEN READ' : ''}`;
      } catch (e) {
        tried[name] = `blocked: ${e.name}`;
      }
    };
    // Same origin as the app: the account page answers elsewhere, or not to a script.
    await read('same-origin account', '/.portcullis/account');
    await read('auth host account', `${auth}/.portcullis/account`);
    // A form post without the page's token, as a script can send it.
    const form = new URLSearchParams({ app: location.hostname, label: 'stolen', lifetime: '90d', csrf: 'guessed' });
    await read('no-cors post', `${auth}/.portcullis/app-passwords`, { method: 'POST', mode: 'no-cors', body: form });
    await read('app-host post', '/.portcullis/app-passwords', { method: 'POST', body: form });
    // The popup variant: open the account page, try to read it, post the form into it.
    const popup = window.open(`${auth}/.portcullis/account`, 'portal');
    await new Promise((r) => setTimeout(r, 1500));
    try {
      tried.popupRead = popup.document.body.innerHTML.includes('csrf') ? 'CSRF TOKEN READ' : 'read, no token';
    } catch (e) {
      tried.popupRead = `blocked: ${e.name}`;
    }
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = `${auth}/.portcullis/app-passwords`;
    f.target = 'portal';
    for (const [k, v] of form) {
      const input = document.createElement('input');
      input.name = k;
      input.value = v;
      f.appendChild(input);
    }
    document.body.appendChild(f);
    f.submit();
    await new Promise((r) => setTimeout(r, 1500));
    try {
      tried.popupAfterPost = popup.document.body.innerHTML.slice(0, 80);
    } catch (e) {
      tried.popupAfterPost = `blocked: ${e.name}`;
    }
    popup.close();
    return tried;
  }, s.auth);
  for (const [what, result] of Object.entries(attack)) {
    assert.ok(!String(result).includes('CSRF TOKEN READ'), `${what}: ${result}`);
  }
  assert.match(attack.popupRead, /blocked/, 'the auth host is another origin');
  assert.match(attack['auth host account'], /blocked/, 'no CORS for the portal');
  const created = s.worker.lines.slice(marks).filter((l) => l.includes('"event":"app_password_created"'));
  assert.deepEqual(created, [], 'no app password was created');
  await page.goto(`${s.auth}/.portcullis/account`);
  assert.equal(await page.locator('tr[data-app-password]').count(), 0);

  // The person, on the auth host, creates one; it works from a phone app and is revoked there.
  const mine = await createAppPassword(page, 'Immich on Pixel 8', 'alice');
  assert.match(mine.id, /^ap_[0-9a-f]{24}$/);
  assert.equal((await asPhone(mine)).status, 200);
  await page.goto(`${s.auth}/.portcullis/account`);
  const row = page.locator('tr[data-app-password]', { hasText: 'Immich on Pixel 8' });
  await Promise.all([page.waitForURL(`${s.auth}/.portcullis/account`), row.locator('button:has-text("Revoke")').click()]);
  assert.equal((await asPhone(mine)).status, 401);
  await context.close();
});

test('an admin ends another person\'s session and app password from the console; the audit names the admin', async () => {
  const bob = await signedIn('bob');
  const bobs = await createAppPassword(bob.page, 'Bob\'s tablet', 'bob');
  assert.equal((await asPhone(bobs)).status, 200);

  const admin = await signedIn('alice', { viewport: { width: 360, height: 740 } });
  await openConsole(admin.page, 'alice');
  const page = admin.page;
  assert.match(await page.textContent('h1'), /Admin console/);
  await fits(page, 'the admin console');
  const person = page.locator('section.person[data-sub="bob-0002"]');
  assert.equal(await person.count(), 1, 'bob is listed');
  assert.ok((await person.locator('tr[data-session]').count()) >= 1, 'with his session');
  assert.match(await person.textContent(), /Bob's tablet/);
  assert.match(await page.textContent('table.issuer'), /reachable/);

  // End bob's session: confirmed first.
  const marks = s.worker.lines.length;
  await person.locator('tr[data-session] button:has-text("End session")').first().click();
  await page.waitForSelector('text=End this session?');
  await fits(page, 'the confirmation page');
  await Promise.all([page.waitForURL(`${s.auth}/.portcullis/admin`), page.click('button:has-text("Yes, do it")')]);
  const me = await bob.page.goto(`${s.app}/.portcullis/me`);
  assert.equal(me.status(), 401, 'bob\'s next request is refused');

  // Revoke his app password.
  const row = page.locator('section.person[data-sub="bob-0002"] tr[data-app-password]', { hasText: 'Bob\'s tablet' });
  await row.locator('button:has-text("Revoke")').click();
  await page.waitForSelector('text=Revoke this app password?');
  await Promise.all([page.waitForURL(`${s.auth}/.portcullis/admin`), page.click('button:has-text("Yes, do it")')]);
  assert.equal((await asPhone(bobs)).status, 401, 'and so is his tablet');

  const audit = s.worker.lines.slice(marks).filter((l) => l.includes('"event":"admin_action"')).map((l) => JSON.parse(l));
  assert.deepEqual(audit.map((a) => [a.admin, a.action]), [['alice-0001', 'end_session'], ['alice-0001', 'revoke_app_password']]);
  assert.ok(audit.every((a) => a.admin_name), 'with the admin\'s name');

  // A script, even on the console's own origin, cannot read it (its CSP, and the gate).
  const script = await page.evaluate(async () => {
    try {
      return (await fetch('/.portcullis/admin', { headers: { accept: 'application/json' } })).status;
    } catch (e) {
      return `blocked: ${e.name}`;
    }
  });
  assert.notEqual(script, 200, String(script));
  // The same data for a program holding the admin's session.
  const cookie = (await admin.context.cookies(s.auth)).map((c) => `${c.name}=${c.value}`).join('; ');
  const data = await new Browser('admin-cli').request(`${s.auth}/.portcullis/admin`, { headers: { accept: 'application/json', cookie }, cookies: false });
  assert.equal(data.status, 200, data.body);
  const listed = data.json().people.find((p) => p.sub === 'alice-0001');
  assert.ok(listed?.sessions.length >= 1, 'the admin\'s own session is listed');
  assert.ok(!data.json().people.some((p) => p.sub === 'bob-0002'), 'bob has nothing live any more');
  assert.ok(Array.isArray(data.json().issuer.key_ids) && data.json().issuer.discovery.reachable);
  await admin.context.close();

  // Bob is in no admin group.
  const again = await signedIn('bob');
  const refused = await again.page.goto(`${s.auth}/.portcullis/admin`);
  assert.equal(refused.status(), 403);
  assert.match(await again.page.textContent('main'), /admin_groups/);
  await again.context.close();
  await bob.context.close();
});

test('the auth host\'s pages fit a 360 px phone screen: account, created app password, sign-out', { timeout: 120_000 }, async () => {
  const { context, page } = await signedIn('carol', { viewport: { width: 360, height: 740 } });
  await page.goto(`${s.auth}/.portcullis/account`);
  await fits(page, 'the account page');
  await createAppPassword(page, 'Immich on a very small phone with a long name', 'carol');
  await fits(page, 'the created app password');
  await page.goto(`${s.auth}/.portcullis/account`);
  await fits(page, 'the account page with an app password');
  await page.goto(`${s.auth}/.portcullis/logout`);
  await fits(page, 'the sign-out confirmation');
  await page.goto(`${s.auth}/.portcullis/signed-out`);
  await fits(page, 'the signed-out page');
  await context.close();
});
