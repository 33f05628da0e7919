// The Snapshots dialog of a VM (issue 13) in headless Chromium, fake
// Firecracker on the local backend: a bad name is shown beside the field,
// a snapshot of the running VM appears with its size, Revert is disabled
// while the VM runs, "New VM" makes a VM from the snapshot, and a delete
// asks first.
//
//   node --test tests/browser/snapshots.test.mjs
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiClient, launchBrowser, screenshot, startStack } from './harness.mjs';

let stack, browser, api;

async function waitFor(what, fn, timeoutMs = 60_000) {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > end) throw new Error('timed out waiting for ' + what);
		await new Promise((r) => setTimeout(r, 300));
	}
}

async function vmByName(name) {
	const r = await api('GET', '/v1/vms?limit=1000');
	return r.body.find((v) => v.name === name);
}

describe('Snapshots', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack();
		api = await apiClient(stack.url, stack.admin_user, stack.admin_password);
		browser = await launchBrowser();
	});
	after(async () => {
		if (browser) await browser.close();
		if (stack) await stack.stop();
	});

	it('takes, lists, clones and deletes a snapshot from the VM row', async () => {
		const errors = [];
		const page = await browser.ctx.newPage();
		page.on('pageerror', (e) => errors.push(e.message));
		const r = await api('POST', '/v1/vms', { name: 'snappy', vcpus: 1, memory_mib: 128,
			image_id: stack.image });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		await waitFor('the VM running', async () => (await vmByName('snappy'))?.state === 'running');

		await page.goto(stack.url + '/#/vms');
		await page.getByLabel('Username').fill('admin');
		await page.getByLabel('Password').fill(stack.admin_password);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('button', { name: 'Snapshots of snappy' }).click();
		const dlg = page.locator('dialog.snapshots-dialog');
		await dlg.getByText('No snapshots yet.').waitFor();

		const name = dlg.getByLabel('Snapshot name');
		await name.fill('../bad');
		await dlg.getByRole('button', { name: 'Take snapshot' }).click();
		assert.equal(await name.getAttribute('aria-invalid'), 'true');
		await name.fill('before-upgrade');
		await dlg.getByRole('button', { name: 'Take snapshot' }).click();
		const row = dlg.locator('#snapshots tbody tr[data-name="before-upgrade"]');
		await row.waitFor();
		assert.match(await row.textContent(), /ready/);
		assert.match(await row.textContent(), /MiB|GiB/);
		const revert = row.getByRole('button', { name: 'Revert before-upgrade' });
		assert.ok(await revert.isDisabled(), 'revert needs the VM stopped');
		await screenshot(page, 'snapshots-dialog');

		await row.getByRole('button', { name: 'New VM before-upgrade' }).click();
		const nd = page.locator('dialog.snapvm-dialog');
		await nd.getByLabel('VM name').fill('snappy-clone');
		await nd.getByRole('button', { name: 'Create VM' }).click();
		await nd.waitFor({ state: 'detached' });
		const clone = await waitFor('the clone running', async () => {
			const v = await vmByName('snappy-clone');
			return v && v.state === 'running' ? v : null;
		});
		assert.equal(clone.storage_backend_id, (await vmByName('snappy')).storage_backend_id);

		await row.getByRole('button', { name: 'Delete before-upgrade' }).click();
		await page.locator('dialog').getByRole('button', { name: 'Delete snapshot' }).click();
		await dlg.getByText('No snapshots yet.').waitFor();
		assert.deepEqual(errors, []);
		await page.close();
	});
});
