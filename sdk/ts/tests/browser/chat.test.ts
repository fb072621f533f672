// The chat example in headless Chromium (Debian's, driven by playwright-core): two tabs chat through a real arq node (AC-SDKTS-9).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Bus } from '../helpers/bus.js';
import { SDK } from '../helpers/paths.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = 20_000;

const bus = new Bus('embedded');
let browser: Browser;
let context: BrowserContext;
let site: { server: Server; url: string };
const pageErrors: string[] = [];

before(async () => {
  await bus.start();
  const { serve } = (await import(`${SDK}/examples/serve.mjs`)) as { serve(port?: number): Promise<{ server: Server; url: string }> };
  site = await serve(0);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: WAIT });
  context = await browser.newContext();
});

after(async () => {
  await browser?.close();
  site?.server.close();
  await bus.stop();
});

/** A tab of the chat example, connected as `sub` with the display name `name`. */
async function tab(sub: string, name: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${sub}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(`${sub}: ${message.text()}`);
  });
  const hash = new URLSearchParams({ url: bus.url, token: bus.token(sub), room: 'lobby', name });
  await page.goto(`${site.url}chat.html#${hash}`);
  await page.locator('#status[data-state="open"]').waitFor({ timeout: WAIT });
  return page;
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#send-button');
}

test('AC-SDKTS-9: two tabs of the example page chat through a real node and see each other in presence', async () => {
  const alice = await tab('alice', 'Alice');
  const bob = await tab('bob', 'Bob');
  // Presence: each tab lists both members (by their metadata names).
  await alice.locator('#members li[data-user="bob"]', { hasText: 'Bob' }).waitFor({ timeout: WAIT });
  await bob.locator('#members li[data-user="alice"]', { hasText: 'Alice' }).waitFor({ timeout: WAIT });
  assert.deepEqual((await bob.locator('#members li').allTextContents()).sort(), ['Alice', 'Bob']);

  await send(bob, 'hi from bob');
  await alice.locator('#log li[data-user="bob"]', { hasText: 'bob: hi from bob' }).waitFor({ timeout: WAIT });
  await send(alice, 'hello bob, from alice');
  await bob.locator('#log li[data-user="alice"]', { hasText: 'alice: hello bob, from alice' }).waitFor({ timeout: WAIT });
  assert.deepEqual(await bob.locator('#log li').allTextContents(), ['bob: hi from bob', 'alice: hello bob, from alice']);
  assert.equal(await alice.locator('#status').textContent(), 'connected as alice in lobby');

  // Bob closes his tab: Alice's presence drops him.
  await bob.close();
  await alice.locator('#members li[data-user="bob"]').waitFor({ state: 'detached', timeout: WAIT });
  assert.deepEqual(await alice.locator('#members li').allTextContents(), ['Alice']);
  assert.deepEqual(pageErrors, [], 'no errors on the pages');
});
