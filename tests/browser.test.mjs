// The login pages in a real browser: headless chromium clicks through the issuer's form,
// lands on the app, and signs out again; manages sessions. (The auth host, app passwords
// and the admin console: tests/portal.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack } from './support/stack.mjs';
import { launch } from './support/chromium.mjs';

let s;
let browser;
before(async () => {
  s = await startStack({ photos: { allow_groups: ['family'], app_passwords: true } });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await s?.stop();
});

test('a visitor signs in through the login form and lands on the app, then signs out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/albums?year=2024`);
  assert.ok(page.url().startsWith(`${s.issuer.url}/interaction/`), `at the issuer: ${page.url()}`);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'alice');
  await Promise.all([page.waitForURL(`${s.app}/albums?year=2024`), page.click('#submit')]);
  assert.match(await page.textContent('#user'), /Signed in as alice/);

  const cookies = await context.cookies(s.app);
  const session = cookies.find((c) => c.name === '__Host-portcullis-session');
  assert.ok(session, 'the browser kept the session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Lax');

  // Reload: the session works without another login.
  await page.reload();
  assert.match(await page.textContent('#user'), /Signed in as alice/);

  // Sign out from the app's link: same-origin, so no confirmation from the gate;
  // the issuer asks, then the signed-out page shows.
  await Promise.all([page.waitForURL(/\/session\/end|\/logout/), page.click('#logout')]);
  await Promise.all([page.waitForURL(`${s.app}/.portcullis/signed-out`), page.click('#logout-yes')]);
  assert.match(await page.textContent('h1'), /You are signed out/);
  const after = await context.cookies(s.app);
  assert.ok(!after.some((c) => c.name === '__Host-portcullis-session'), 'session cookie removed');

  await page.goto(`${s.app}/`);
  assert.ok(page.url().startsWith(`${s.issuer.url}/interaction/`), 'signed out everywhere: the issuer asks again');
  await context.close();
});

test('a wrong password stays at the issuer; the gate never lets the visitor through', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/`);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'wrong');
  await page.click('#submit');
  await page.waitForSelector('.err');
  assert.ok(page.url().startsWith(s.issuer.url));
  const res = await page.goto(`${s.app}/.portcullis/me`);
  assert.equal(res.status(), 401);
  await context.close();
});

test('a user without access sees the 403 page and can sign in as someone else', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/albums`);
  await page.fill('#username', 'bob');
  await page.fill('#password', 'bob');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${s.app}/albums`),
    page.click('#submit'),
  ]);
  assert.equal(response.status(), 403);
  assert.match(await page.textContent('h1'), /You don't have access/);
  assert.match(await page.textContent('main'), /signed in as bob/);
  assert.ok(await page.isVisible('button:has-text("Sign out")'), 'a sign-out button');

  // The issuer is asked to show its login form again, even though bob is signed in there.
  await Promise.all([page.waitForURL(/\/interaction\//), page.click('a:has-text("Sign in as someone else")')]);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'alice');
  await Promise.all([page.waitForURL(`${s.app}/albums`), page.click('#submit')]);
  assert.match(await page.textContent('#user'), /Signed in as alice/);
  await context.close();
});

test('the sign-out button on the 403 page ends the session', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.app}/`);
  await page.fill('#username', 'bob');
  await page.fill('#password', 'bob');
  await Promise.all([page.waitForResponse((r) => r.url() === `${s.app}/`), page.click('#submit')]);
  await Promise.all([page.waitForURL(/\/session\/end|\/logout/), page.click('button:has-text("Sign out")')]);
  const me = await page.goto(`${s.app}/.portcullis/me`);
  assert.equal(me.status(), 401, 'the Portcullis session is gone');
  await context.close();
});

test('sessions page: list two sessions, sign out the other one, see it gone', async () => {
  const laptop = await browser.newContext({ userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36' });
  const phone = await browser.newContext({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1' });
  for (const context of [laptop, phone]) {
    const page = await context.newPage();
    await page.goto(`${s.app}/`);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'alice');
    await Promise.all([page.waitForURL(`${s.app}/`), page.click('#submit')]);
  }
  const page = await laptop.newPage();
  await page.goto(`${s.app}/.portcullis/sessions`); // the old address leads to the account page
  assert.equal(page.url(), `${s.app}/.portcullis/account`);
  assert.match(await page.textContent('h1'), /Your account/);
  const rows = page.locator('tr[data-session]');
  const before = await rows.count();
  assert.ok(before >= 2, 'both new sessions are listed (earlier tests may have left more)');
  assert.match(await page.textContent('table'), /Chrome on Linux[\s\S]*This device|This device[\s\S]*Chrome on Linux/);
  const phoneRow = rows.filter({ hasText: 'Safari on iOS' });
  assert.equal(await phoneRow.count(), 1);
  await Promise.all([page.waitForURL(`${s.app}/.portcullis/account`), phoneRow.locator('button:has-text("Sign out")').click()]);
  assert.equal(await page.locator('tr[data-session]').count(), before - 1, 'one row fewer');
  assert.equal(await page.locator('tr[data-session]', { hasText: 'Safari on iOS' }).count(), 0);

  const phonePage = await phone.newPage();
  const res = await phonePage.goto(`${s.app}/.portcullis/me`);
  assert.equal(res.status(), 401, 'and the phone is signed out');
  await laptop.close();
  await phone.close();
});

test('every Portcullis page fits a 360 px phone screen without scrolling sideways', { timeout: 120_000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  const fits = async (what) => {
    const { scroll, inner } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
    }));
    assert.ok(scroll <= inner, `${what}: ${scroll} px wide in a ${inner} px window`);
  };
  await page.goto(`${s.app}/.portcullis/account`);
  await page.fill('#username', 'alice');
  await page.fill('#password', 'alice');
  await Promise.all([page.waitForURL(`${s.app}/.portcullis/account`), page.click('#submit')]);
  await fits('the account page (here without an auth host: it says where app passwords come from)');
  assert.match(await page.textContent('main'), /auth_host/);

  // An error page, the sign-out confirmation and the signed-out page.
  await page.goto(`${s.app}/.portcullis/nothing-here`);
  await fits('the 404 page');
  await page.goto(`${s.app}/.portcullis/signed-out`);
  await fits('the signed-out page');
  await context.close();

  // The 403 page, for someone the app does not admit.
  const other = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const denied = await other.newPage();
  await denied.goto(`${s.app}/albums`);
  await denied.fill('#username', 'bob');
  await denied.fill('#password', 'bob');
  await Promise.all([denied.waitForResponse((r) => r.url() === `${s.app}/albums`), denied.click('#submit')]);
  const { scroll, inner } = await denied.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  assert.ok(scroll <= inner, `the 403 page: ${scroll} px wide in a ${inner} px window`);
  await other.close();
});
