// Signs in and consents on toolhost's authorization page in a real browser
// (Debian's Chromium, headless), as a person would: opens the authorize URL,
// checks that the page says what the application asks for, saves a
// screenshot, types the user name and password, clicks Allow, and checks that
// the browser is sent back to the application with a code.
//
// Usage: node consent.mjs AUTHORIZE_URL REDIRECT_URI USER PASSWORD SCREENSHOT [EXPECTED_TEXT...]
// Prints `OK code=CODE` on success; anything else is a failure, explained.

import http from 'node:http';

import { chromium } from 'playwright-core';

const [authorizeUrl, redirectUri, user, password, screenshot, ...expected] = process.argv.slice(2);
if (!screenshot) {
    console.error('usage: node consent.mjs AUTHORIZE_URL REDIRECT_URI USER PASSWORD SCREENSHOT [EXPECTED_TEXT...]');
    process.exit(2);
}

const cleanups = [];
const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
try {
    // The test server's certificate is self-signed and generated per run.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 800, height: 720 } });
    const page = await context.newPage();
    // The application's end of the redirect: a loopback listener, as a
    // native MCP client has.
    let arrived = null;
    const target = new URL(redirectUri);
    const listener = http.createServer((req, res) => {
        // The browser also asks this origin for /favicon.ico once the page
        // lands; only the redirect path is the application's answer.
        const url = new URL(req.url, redirectUri);
        if (url.pathname === target.pathname) {
            arrived = url.toString();
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('back at the application');
    });
    await new Promise((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(Number(target.port), target.hostname, resolve);
    });
    cleanups.push(() => listener.close());
    const response = await page.goto(authorizeUrl);
    if (!response || response.status() !== 200) {
        throw new Error(`the authorize page answered ${response && response.status()}`);
    }
    const text = await page.innerText('body');
    const missing = expected.filter((want) => !text.includes(want));
    await page.screenshot({ path: screenshot, fullPage: true });
    if (missing.length > 0) {
        throw new Error(`the page does not say ${JSON.stringify(missing)}; it says:\n${text}`);
    }
    await page.fill('input[name=username]', user);
    await page.fill('input[name=password]', password);
    await Promise.all([
        page.waitForURL(`${redirectUri}**`),
        page.click('button[value=allow]'),
    ]);
    const back = new URL(arrived || page.url());
    const code = back.searchParams.get('code');
    if (!code) {
        throw new Error(`back at the application without a code: ${back}`);
    }
    console.log(`OK code=${code} state=${back.searchParams.get('state') || ''}`);
} finally {
    await browser.close();
    cleanups.forEach((cleanup) => cleanup());
}
