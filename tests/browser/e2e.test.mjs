// Real-browser end-to-end tests: headless Debian Chromium, driven by playwright-core, against
// the real gateway and database that tests/browser/run.sh starts (with sql/examples/flows.sql).
// A person completes the password-reset and questionnaire flows by typing and clicking; a
// JavaScript-running "scanner" loads a link and auto-submits its form, and burns nothing.
// Screenshots of every page go to $SCREENSHOT_DIR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.LINKTOKEN_BASE_URL;
const SHOTS = process.env.SCREENSHOT_DIR ?? 'screenshots';
assert.ok(BASE, 'set LINKTOKEN_BASE_URL (tests/browser/run.sh does)');
mkdirSync(SHOTS, { recursive: true });

// psql as the superuser of the test database (PGHOST, PGPORT, PGDATABASE, PGUSER from run.sh).
// Values travel as psql variables, never spliced into SQL text.
function sql(query, vars = {}) {
  const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1'];
  for (const [k, v] of Object.entries(vars)) args.push('-v', `${k}=${v}`);
  return execFileSync('/usr/bin/psql', args, { input: query, encoding: 'utf8' }).trim();
}
const issue = (purpose, subject) =>
  sql(`SELECT linktoken.issue(:'p', :'s')`, { p: purpose, s: subject });
const status = (token, purpose) =>
  sql(`SELECT status FROM linktoken.peek(:'t', :'p')`, { t: token, p: purpose });

// The mails the SMTP sink received (tests/browser/run.sh: MAIL_SPOOL/<n>.eml), each as the
// decoded text of its text/plain part (quoted-printable soft breaks and =XX undone).
const SPOOL = process.env.MAIL_SPOOL;
function mails() {
  if (!SPOOL) return [];
  const names = readdirSync(SPOOL).filter((f) => f.endsWith('.eml'))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
  return names.map((f) => {
    const raw = readFileSync(`${SPOOL}/${f}`, 'utf8').replace(/\r\n/g, '\n');
    const to = (raw.match(/^To: (.*)$/m) ?? [])[1];
    const subject = (raw.match(/^Subject: (.*)$/m) ?? [])[1];
    const part = raw.split(/^--.*$/m).find((p) => /Content-Type: text\/plain/i.test(p)) ?? '';
    const text = part.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    return { to, subject, text };
  });
}
async function mailAfter(count, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const all = mails();
    if (all.length > count) return all[count];
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no mail arrived within ${timeoutMs} ms (spool ${SPOOL})`);
}

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => { await browser?.close(); });

async function page() {
  const context = await browser.newContext({ viewport: { width: 420, height: 900 } });
  return context.newPage();
}

test('a person resets their password by typing and clicking', async () => {
  const token = issue('password_reset', '42');
  const p = await page();
  const external = [];
  p.on('request', (r) => { if (!r.url().startsWith(BASE)) external.push(r.url()); });
  await p.goto(`${BASE}/t/${token}`);
  assert.equal(await p.locator('h1').textContent(), 'Choose a new password');
  assert.equal(await p.locator('script').count(), 0);
  await p.screenshot({ path: `${SHOTS}/reset-1-landing.png`, fullPage: true });

  // Too short: the browser's own validation keeps the form; the server would say 422 anyway.
  await p.getByLabel('New password', { exact: true }).fill('correct horse battery');
  await p.getByLabel('New password again').fill('correct horse battery');
  await p.getByRole('button', { name: 'Set new password' }).click();
  await p.waitForLoadState();
  assert.match(await p.locator('h1').textContent(), /Password changed/);
  await p.screenshot({ path: `${SHOTS}/reset-2-done.png`, fullPage: true });
  assert.deepEqual(external, [], 'the page loads nothing from other origins');

  assert.equal(status(token, 'password_reset'), 'used');
  assert.equal(sql(`SELECT password_hash LIKE '$2a$%' FROM app.users WHERE id = 42`), 't');

  // Back and submit again: the link is spent, and the page says so.
  await p.goto(`${BASE}/t/${token}`);
  assert.match(await p.locator('body').textContent(), /already used/i);
  await p.screenshot({ path: `${SHOTS}/reset-3-used.png`, fullPage: true });
});

test('a patient fills in the PHQ-9 questionnaire', async () => {
  const assignment = sql(`SELECT id FROM app.assignments LIMIT 1`);
  const token = issue('phq9', assignment);
  assert.ok(!token.includes(assignment), 'the link carries no assignment or patient id');
  const p = await page();
  await p.goto(`${BASE}/t/${token}`);
  await p.screenshot({ path: `${SHOTS}/phq9-1-landing.png`, fullPage: true });
  // Answers 0,1,2,3,0,1,2,3,0 -> score 12.
  const labels = ['Not at all', 'Several days', 'More than half the days', 'Nearly every day'];
  for (let i = 1; i <= 9; i++) {
    const group = p.locator('fieldset').nth(i - 1);
    await group.getByLabel(labels[(i - 1) % 4], { exact: true }).check();
  }
  assert.equal(status(token, 'phq9'), 'ok', 'nothing is consumed before the answers are sent');
  await p.getByRole('button', { name: 'Send my answers' }).click();
  await p.waitForLoadState();
  assert.match(await p.locator('h1').textContent(), /Thank you/);
  await p.screenshot({ path: `${SHOTS}/phq9-2-done.png`, fullPage: true });
  assert.equal(status(token, 'phq9'), 'used');
  assert.equal(sql(`SELECT score FROM app.phq9_responses WHERE assignment_id = :'a'`, { a: assignment }), '12');
});

test('a JavaScript-running scanner that auto-submits the form burns nothing', async () => {
  const token = sql(`SELECT linktoken.issue('verify_email', '43', '{"email": "ben@example.org"}')`);
  const p = await page();
  await p.goto(`${BASE}/t/${token}`);
  await p.waitForLoadState('networkidle');
  // What Safe Links was seen doing: submit the page's form with its default values
  // (form.submit() skips the browser's own validation of required fields).
  await p.evaluate(() => document.querySelector('form').submit());
  await p.waitForLoadState();
  assert.match(await p.locator('body').textContent(), /Please tick/);
  await p.screenshot({ path: `${SHOTS}/scanner-autosubmit-refused.png`, fullPage: true });
  assert.equal(status(token, 'verify_email'), 'ok', 'the link still works for the person');

  // Then the person, in a fresh browser: ticks the box and confirms.
  const human = await page();
  await human.goto(`${BASE}/t/${token}`);
  await human.getByLabel('Yes, this is my email address').check();
  await human.getByRole('button', { name: 'Confirm my address' }).click();
  await human.waitForLoadState();
  assert.match(await human.locator('h1').textContent(), /Address confirmed/);
  assert.equal(status(token, 'verify_email'), 'used');
  assert.equal(sql(`SELECT email_verified FROM app.users WHERE id = 43`), 't');
});

test('magic sign-in: the asking browser uses the link, a second browser profile uses the code', async () => {
  // The app sets a random bind cookie in the browser that asks for the link.
  const bind = sql(`SELECT encode(crypto.gen_random_bytes(24), 'hex')`);
  const original = await browser.newContext({ viewport: { width: 420, height: 900 } });
  await original.addCookies([{ name: 'linktoken_bind', value: bind, url: BASE }]);
  const [tokenA, codeA] = sql(`SELECT token || '|' || code FROM linktoken.issue_with_code('magic_login', '42', bind => :'b')`, { b: bind }).split('|');

  // Opened in another browser profile (no cookie): the page says where the link works and
  // offers the code form; nothing is consumed.
  const other = await page();
  await other.goto(`${BASE}/t/${tokenA}`);
  assert.match(await other.locator('h1').textContent(), /browser where you asked/i);
  await other.screenshot({ path: `${SHOTS}/magic-1-other-browser.png`, fullPage: true });
  assert.equal(status(tokenA, 'magic_login'), 'unbound');
  await other.getByRole('link', { name: 'Enter the code' }).click();
  await other.waitForLoadState();
  await other.getByLabel('Your user number').fill('42');
  await other.getByLabel('Code from the email').fill(`${codeA.slice(0, 3)} ${codeA.slice(3)}`);
  await other.screenshot({ path: `${SHOTS}/magic-2-code-form.png`, fullPage: true });
  await other.getByRole('button', { name: 'Sign me in' }).click();
  await other.waitForLoadState();
  assert.match(await other.locator('h1').textContent(), /signed in/);
  await other.screenshot({ path: `${SHOTS}/magic-3-signed-in-with-code.png`, fullPage: true });
  const cookies = await other.context().cookies();
  const session = cookies.find((c) => c.name === 'demo_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(cookies));
  assert.equal(sql(`SELECT status FROM linktoken.peek(:'t', 'magic_login', :'b')`, { t: tokenA, b: bind }), 'used');

  // The browser that asked: the link itself signs in.
  const tokenB = sql(`SELECT token FROM linktoken.issue_with_code('magic_login', '43', bind => :'b')`, { b: bind });
  const mine = await original.newPage();
  await mine.goto(`${BASE}/t/${tokenB}`);
  await mine.getByLabel('Yes, sign me in on this device').check();
  await mine.getByRole('button', { name: 'Sign me in' }).click();
  await mine.waitForLoadState();
  assert.match(await mine.locator('h1').textContent(), /signed in/);
  assert.ok((await original.cookies()).some((c) => c.name === 'demo_session'));
});

test('login CSRF: a page on another site cannot sign this browser in with the attacker\'s code', async () => {
  // Eve (user 44) asks for a sign-in code for her own account and builds a page that posts it
  // to the code form as soon as it loads. Whoever opens it would be signed in as Eve.
  sql(`INSERT INTO app.users (id, email) VALUES (44, 'eve@example.org') ON CONFLICT (id) DO NOTHING`);
  const eveBind = sql(`SELECT md5(random()::text) || md5(random()::text)`);
  const [token, code] = sql(`SELECT token || '|' || code FROM linktoken.issue_with_code('magic_login', '44', bind => :'b')`, { b: eveBind }).split('|');
  const eveStatus = () => sql(`SELECT status FROM linktoken.peek(:'t', 'magic_login', :'b')`, { t: token, b: eveBind });
  const attack = `<!doctype html><form method="post" action="${BASE}/code/magic_login">
    <input name="subject" value="44"><input name="code" value="${code}"></form>
    <script>document.forms[0].submit()</script>`;
  // Opens `url` (served by the test as the attack page, with `headers`) and returns the
  // answer to the form post it makes.
  const visit = async (victim, url, headers = {}) => {
    await victim.route(url, (r) => r.fulfill({ contentType: 'text/html', headers, body: attack }));
    const posted = victim.waitForResponse((r) => r.request().method() === 'POST');
    await victim.goto(url);
    const answer = await posted;
    await victim.waitForLoadState();
    return answer;
  };
  const signedIn = async (victim) => (await victim.context().cookies()).some((c) => c.name === 'demo_session');

  // From another site (Chromium sends Origin: http://attacker.test), and from another site's
  // no-referrer page (Origin: null, Sec-Fetch-Site: cross-site): refused, nothing happened.
  for (const [url, headers] of [['http://attacker.test/prize', {}],
    ['http://attacker2.test/prize', { 'Referrer-Policy': 'no-referrer' }]]) {
    const victim = await page();
    const answer = await visit(victim, url, headers);
    assert.equal(answer.status(), 403, url);
    assert.match(await victim.locator('h1').textContent(), /Request refused/);
    assert.ok(!(await signedIn(victim)), `${url}: no session cookie`);
    assert.equal(eveStatus(), 'ok', `${url}: the code was not used`);
  }
  const victim = await page();
  await visit(victim, 'http://attacker.test/prize');
  await victim.screenshot({ path: `${SHOTS}/csrf-refused.png`, fullPage: true });

  // Positive control: the very same page served from the gateway's own origin signs in, so the
  // attack works in this browser and only its origin stopped it.
  const control = await page();
  const answer = await visit(control, `${BASE}/csrf-control`);
  assert.equal(answer.status(), 200);
  assert.match(await control.locator('h1').textContent(), /signed in/);
  assert.ok(await signedIn(control));
  assert.equal(eveStatus(), 'used');
});

test('request form: a person types their email, the mail arrives, its link signs in this browser; another profile gets the code page', async () => {
  assert.ok(SPOOL, 'set MAIL_SPOOL (tests/browser/run.sh does)');
  // A user of her own: magic_login allows one sign-in mail per user every 30 seconds, and the
  // other tests issue for users 42 to 44.
  sql(`INSERT INTO app.users (id, email) VALUES (45, 'cleo@example.org') ON CONFLICT (id) DO NOTHING`);
  const mine = await browser.newContext({ viewport: { width: 420, height: 900 } });
  const p = await mine.newPage();
  await p.goto(`${BASE}/request/magic_login`);
  await p.screenshot({ path: `${SHOTS}/request-1-form.png`, fullPage: true });
  assert.equal(await p.locator('input:not([type=hidden])').count(), 1, 'one field');
  const before = mails().length;
  await p.getByLabel('Your email address').fill('Cleo@Example.org ');
  await p.getByRole('button', { name: 'Email me a link' }).click();
  await p.waitForLoadState();
  const answer = await p.locator('body').textContent();
  assert.match(answer, /Check your email/);
  await p.screenshot({ path: `${SHOTS}/request-2-sent.png`, fullPage: true });

  const mail = await mailAfter(before);
  assert.equal(mail.to, 'cleo@example.org');
  assert.equal(mail.subject, 'Your sign-in link');
  const link = (mail.text.match(new RegExp(`${BASE}/t/[A-Za-z0-9_-]+`)) ?? [])[0];
  const code = (mail.text.match(/\b(\d{3} ?\d{3})\b/) ?? [])[1];
  assert.ok(link, mail.text);
  assert.ok(code, mail.text);

  // Another browser profile (no bind cookie): the code page, and the link stays unused.
  const other = await page();
  await other.goto(link);
  assert.match(await other.locator('h1').textContent(), /browser where you asked/i);
  await other.screenshot({ path: `${SHOTS}/request-3-other-profile.png`, fullPage: true });
  const token = link.split('/t/')[1];
  assert.equal(status(token, 'magic_login'), 'unbound');

  // This browser (it got the bind cookie with the form): the link signs in.
  await p.goto(link);
  await p.getByLabel('Yes, sign me in on this device').check();
  await p.getByRole('button', { name: 'Sign me in' }).click();
  await p.waitForLoadState();
  assert.match(await p.locator('h1').textContent(), /signed in/);
  await p.screenshot({ path: `${SHOTS}/request-4-signed-in.png`, fullPage: true });
  assert.ok((await mine.cookies()).some((c) => c.name === 'demo_session'));
  assert.ok(Number(sql(`SELECT count(*) FROM app.sessions WHERE user_id = 45`)) > 0);

  // An unknown address: the same answer, and no mail.
  const count = mails().length;
  const q = await page();
  await q.goto(`${BASE}/request/magic_login`);
  await q.getByLabel('Your email address').fill('nobody@example.org');
  await q.getByRole('button', { name: 'Email me a link' }).click();
  await q.waitForLoadState();
  assert.equal(await q.locator('body').textContent(), answer);
  assert.equal(sql(`SELECT count(*) FROM linktoken.outbox WHERE address = 'nobody@example.org'`), '0');
  assert.equal(mails().length, count);
});
