// Browser driver for tapgate's end-to-end tests.
//
// Launches Debian's Chromium headless with one page and a CDP WebAuthn virtual authenticator
// (CTAP2 over USB, user verification, automatic presence), then reads commands as JSON lines on
// stdin and answers each with one JSON line on stdout: {"ok": true, "value": ...} or
// {"ok": false, "error": "..."}. The same page and authenticator serve every command, so a key
// enrolled by one command signs in with the next. Diagnostics go to stderr.
//
// Commands: {"goto": URL} · {"fill": SEL, "value": TEXT} · {"click": SEL} ·
// {"waitFor": SEL, "timeoutMs": N} · {"text": SEL} · {"url": true} · {"eval": JS_EXPRESSION} ·
// {"screenshot": PATH} · {"credentials": true} · {"console": true} ·
// {"viewport": {"width": W, "height": H}} · {"quit": true}
import { chromium } from 'playwright-core';
import readline from 'node:readline';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapgate-chromium-'));
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const context = await chromium.launchPersistentContext(userDataDir, { executablePath, headless: true, args });
const page = context.pages()[0] || await context.newPage();
const consoleLines = [];
page.on('console', (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
// Chromium answers JS dialogs (confirm) with "OK", as a person deciding to go ahead would.
page.on('dialog', (dialog) => dialog.accept());

const cdp = await context.newCDPSession(page);
await cdp.send('WebAuthn.enable', { enableUI: false });
const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
  options: {
    protocol: 'ctap2', transport: 'usb', hasResidentKey: false, hasUserVerification: true,
    isUserVerified: true, automaticPresenceSimulation: true,
  },
});

async function run(cmd) {
  if (cmd.goto) { await page.goto(cmd.goto, { waitUntil: 'load' }); return page.url(); }
  if (cmd.fill) { await page.fill(cmd.fill, cmd.value ?? ''); return null; }
  if (cmd.click) { await page.click(cmd.click); return null; }
  if (cmd.waitFor) { await page.waitForSelector(cmd.waitFor, { state: 'visible', timeout: cmd.timeoutMs ?? 15000 }); return null; }
  if (cmd.text) { return (await page.textContent(cmd.text)) ?? ''; }
  if (cmd.url) { return page.url(); }
  if (cmd.eval) { return await page.evaluate(cmd.eval); }
  if (cmd.screenshot) { await page.screenshot({ path: cmd.screenshot, fullPage: true }); return cmd.screenshot; }
  if (cmd.credentials) { return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials; }
  if (cmd.console) { return consoleLines; }
  if (cmd.viewport) { await page.setViewportSize(cmd.viewport); return page.viewportSize(); }
  throw new Error('unknown command: ' + JSON.stringify(cmd));
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { console.log(JSON.stringify({ ok: false, error: 'bad JSON: ' + e.message })); continue; }
  if (cmd.quit) break;
  try {
    const value = await run(cmd);
    console.log(JSON.stringify({ ok: true, value }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  }
}
await context.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
