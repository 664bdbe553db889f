/**
 * Headless Chromium for the board's browser tests: Debian's /usr/bin/chromium
 * driven by playwright-core (no browser download). Without it a test is
 * skipped locally and fails in CI.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
export const haveChromium = existsSync(CHROMIUM);
/** Skip (locally) when Chromium is missing; in CI the test runs and fails instead. */
export const skipBrowser = !haveChromium && !process.env.CI;

export async function launchChromium(): Promise<Browser> {
  if (!haveChromium) throw new Error(`${CHROMIUM} is not installed; CI must provide Debian's chromium for the board's browser tests`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
