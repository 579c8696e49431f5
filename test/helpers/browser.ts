import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import type { Scope } from './processes.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The strict policy the page must work under: no inline script or style, nothing but this origin. */
export const STRICT_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'";

/**
 * Debian's chromium through playwright-core, headless, with a fresh profile. A missing browser is
 * a failure, never a skip. Every document is served with STRICT_CSP, so an inline script or
 * style in the page would break the tests.
 */
export async function launchBrowser(scope: Scope): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'taskcast-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync',
      // Documents fulfilled by the CSP route below have no IP address space, so Chromium would treat
      // the page as public and block its WebSocket to 127.0.0.1 (Local Network Access). The WebUI
      // omnibox popups, preloaded in renderers of their own although headless shows no omnibox,
      // keep about 15% of a core busy while the browser idles (1.5% without them).
      '--disable-features=LocalNetworkAccessChecks,WebUIOmniboxPopup,WebUIOmniboxFullPopup,WebUIOmniboxAimPopup',
    ],
    viewport: { width: 1100, height: 900 },
  });
  scope.after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  await context.route('**/*', async (route) => {
    if (route.request().resourceType() !== 'document') return route.continue();
    const response = await route.fetch();
    return route.fulfill({ response, headers: { ...response.headers(), 'content-security-policy': STRICT_CSP } });
  });
  return context;
}
