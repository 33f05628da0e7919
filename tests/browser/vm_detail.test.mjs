// The VM detail page with a live console in headless Chromium (issue 14):
// a real QEMU guest (the echo variant of the demo image, stack.py --qemu)
// is opened from the VM list; the page shows its own serial output
// (NQRUST-MARKER-ABSENT) in xterm.js, keys typed into the console reach
// the guest, which echoes them (ECHO:<line>), and when it powers itself
// off the page shows NQRUST-POWEROFF and the reason in words. One boot.
//
//   node --test tests/browser/vm_detail.test.mjs
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiClient, launchBrowser, screenshot, startStack } from './harness.mjs';

let stack, browser, api;

async function waitFor(what, fn, timeoutMs = 240_000) {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > end) throw new Error('timed out waiting for ' + what);
		await new Promise((r) => setTimeout(r, 300));
	}
}

// The terminal's whole buffer (scrollback included) as text.
function consoleText(page) {
	return page.evaluate(() => {
		const t = document.getElementById('vm-console')?.nqTerm;
		if (!t) return '';
		const b = t.buffer.active, out = [];
		for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
		return out.join('\n');
	});
}

describe('VM detail and console', { timeout: 600_000 }, () => {
	before(async () => {
		stack = await startStack({ qemu: true });
		api = await apiClient(stack.url, stack.admin_user, stack.admin_password);
		browser = await launchBrowser();
	});
	after(async () => {
		if (browser) await browser.close();
		if (stack) await stack.stop();
	});

	it('shows the guest\'s serial output, carries keystrokes and tells why it stopped', async (t) => {
		if (!stack.qemu_image) return t.skip('no QEMU demo image here');
		const errors = [];
		const page = await browser.ctx.newPage();
		page.on('pageerror', (e) => errors.push(e.message));
		page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
		const r = await api('POST', '/v1/vms', { name: 'echo-ui', vcpus: 1, memory_mib: 256,
			image_id: stack.qemu_image, storage_backend_id: 'localfile-default' });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		const id = r.body.id;

		await page.goto(stack.url + '/#/vms');
		await page.getByLabel('Username').fill('admin');
		await page.getByLabel('Password').fill(stack.admin_password);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('link', { name: 'echo-ui' }).click();
		await page.waitForURL('**/#/vms/' + id);
		await page.locator('#vm-title', { hasText: 'echo-ui' }).waitFor();
		await waitFor('the guest\'s marker', async () => /NQRUST-ECHO-READY/.test(await consoleText(page)));
		assert.match(await consoleText(page), /NQRUST-MARKER-ABSENT/);
		assert.match(await page.locator('#vm-facts').innerText(), /localfile-default[\s\S]*\.raw/);

		await page.locator('#vm-console').click();
		await page.keyboard.type('hello-from-chromium');
		await page.keyboard.press('Enter');
		await waitFor('the echo', async () => /ECHO:hello-from-chromium/.test(await consoleText(page)), 60_000);

		await page.keyboard.type('poweroff');
		await page.keyboard.press('Enter');
		await waitFor('the poweroff', async () => /NQRUST-POWEROFF/.test(await consoleText(page)), 60_000);
		await page.locator('#vm-last-exit', { hasText: 'the guest powered itself off' }).waitFor({ timeout: 60_000 });
		assert.equal(await page.locator('#vm-facts dd[data-fact="State"]').innerText(), 'stopped');
		await screenshot(page, 'vm-detail');
		await page.close();
		assert.deepEqual(errors, []);
	});
});
