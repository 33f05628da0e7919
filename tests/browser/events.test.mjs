// Issue 14 in headless Chromium: the Events pane lists a failed backend
// add with its classified cause; the layout at 400 px keeps Sign out
// visible with no horizontal page scroll; and the small things: no
// spinner before a submit or after a failure, the runbook link opens a
// new tab, a "manager down" banner, Enter advances the VM wizard, a
// failing backend shows its cause in its row and on its VMs.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiClient, launchBrowser, screenshot, startStack } from './harness.mjs';

let stack, browser, page, api;
let consoleErrors = [];

async function signIn(hash = '#/storage', user = 'admin', password = stack.admin_password) {
	await page.goto(stack.url + '/' + hash);
	await page.getByLabel('Username').fill(user);
	await page.getByLabel('Password').fill(password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

describe('events and layout', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack();
		api = await apiClient(stack.url, stack.admin_user, stack.admin_password);
		browser = await launchBrowser();
	});
	after(async () => {
		if (browser) await browser.close();
		if (stack) await stack.stop();
	});
	beforeEach(async () => {
		consoleErrors = [];
		page = await browser.ctx.newPage();
		page.on('pageerror', (e) => consoleErrors.push(e.message));
		page.on('console', (m) => {
			if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
		});
	});
	afterEach(async () => {
		await page.close();
		assert.deepEqual([...new Set(consoleErrors)], []);
	});

	it('lists a failed backend add with its cause in the events pane', async () => {
		await signIn();
		await page.getByRole('button', { name: 'Add backend' }).click();
		const dlg = page.locator('dialog.backend-dialog');
		const progress = dlg.locator('p.progress');
		assert.equal(await progress.isVisible(), false, 'a spinner shows before any submit');
		await dlg.getByLabel('Name', { exact: true }).fill('ev-wrong-pw');
		await dlg.getByLabel('Server').fill(stack.smb.host);
		await dlg.getByLabel('Share name').fill('secure');
		await dlg.getByLabel('Username').fill(stack.smb.user);
		await dlg.getByLabel('Password', { exact: true }).fill('definitely-wrong');
		await dlg.getByRole('button', { name: 'Show advanced options' }).click();
		await dlg.getByLabel('Extra mount options').fill(`port=${stack.smb.port}`);
		await dlg.getByRole('button', { name: 'Add backend' }).click();
		await dlg.locator('.alert[data-code="smb_auth_failed"]').waitFor();
		assert.equal(await progress.isVisible(), false, '"Asking the agent…" stays after the failure');
		const guide = dlg.getByRole('link', { name: /Troubleshooting guide/ });
		assert.equal(await guide.getAttribute('target'), '_blank');
		assert.match(await guide.getAttribute('rel'), /noopener/);
		await dlg.getByRole('button', { name: 'Cancel' }).click();

		const pane = page.locator('#events-pane');
		const row = pane.locator('tr[data-action="backend.add_failed"]', { hasText: 'ev-wrong-pw' });
		await row.waitFor();
		assert.equal(await row.getAttribute('data-outcome'), 'failed');
		assert.match(await row.locator('.ev-cause').textContent(), /^smb_auth_failed: .*(password|credentials)/);
		await screenshot(page, 'events-pane-failed-add');
		// The Events page filters by outcome and shows the same event.
		await page.getByRole('link', { name: 'Events', exact: true }).click();
		await page.locator('#ev-outcome').selectOption('failed');
		await page.locator('#events tr[data-action="backend.add_failed"]', { hasText: 'smb_auth_failed' }).waitFor();
		assert.equal(await page.locator('#events tr[data-outcome="ok"]').count(), 0);
	});

	it('keeps Sign out visible and no horizontal scroll at 400 px', async () => {
		await page.setViewportSize({ width: 400, height: 800 });
		await signIn();
		for (const route of ['storage', 'vms', 'hosts', 'events']) {
			await page.goto(stack.url + '/#/' + route);
			await page.locator(route === 'events' ? '#events' : '#events-pane').waitFor();
			await page.waitForTimeout(300); // on purpose: the lists have rendered
			const out = page.getByRole('button', { name: 'Sign out' });
			assert.ok(await out.isVisible(), route);
			const box = await out.boundingBox();
			assert.ok(box.x >= 0 && box.x + box.width <= 400, `${route}: Sign out at ${JSON.stringify(box)}`);
			const [sw, iw] = await page.evaluate(() => [document.scrollingElement.scrollWidth, innerWidth]);
			assert.ok(sw <= iw, `${route}: scrollWidth ${sw} > innerWidth ${iw}`);
		}
		await screenshot(page, 'layout-400px');
	});

	it('shows a clear banner while the manager cannot be reached', async () => {
		await signIn();
		const banner = page.locator('#conn-banner');
		assert.equal(await banner.isVisible(), false);
		await page.route('**/v1/**', (r) => r.abort('connectionrefused'));
		await banner.waitFor({ state: 'visible' });
		assert.match(await banner.textContent(), /Manager unreachable/);
		await page.unroute('**/v1/**');
		await banner.waitFor({ state: 'hidden' });
	});

	it('keeps a failed start on screen until it is dismissed', async () => {
		if ((await api('GET', '/v1/vms')).status !== 200) return;
		const r = await api('POST', '/v1/vms', { name: 'ev-start', vcpus: 1, memory_mib: 128, image_id: stack.image });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		for (let i = 0; i < 120 && (await api('GET', '/v1/vms/' + r.body.id)).body.state !== 'running'; i++)
			await new Promise((res) => setTimeout(res, 250));
		assert.equal((await api('POST', `/v1/vms/${r.body.id}/stop`)).status, 200);
		await page.clock.install();
		await signIn('#/vms');
		// The failure itself is staged: the point is what the UI does with it.
		await page.route('**/v1/vms/*/start', (rt) => rt.fulfill({ status: 422, contentType: 'application/json',
			body: JSON.stringify({ error: { code: 'vm_start_failed', message: 'QEMU could not allocate 200000 MiB' } }) }));
		const tr = page.locator('#vms tbody tr[data-name="ev-start"]');
		await tr.getByRole('button', { name: 'Start ev-start', exact: true }).click();
		const t = page.locator('.toast.error', { hasText: 'could not allocate' });
		await t.waitFor();
		await page.clock.fastForward(20_000);
		assert.ok(await t.isVisible(), 'the failure vanished by itself');
		await t.getByRole('button', { name: /Dismiss/ }).click();
		await t.waitFor({ state: 'detached' });
		assert.equal((await api('DELETE', '/v1/vms/' + r.body.id)).status, 204);
	});

	it('shows a failing backend\'s cause and since when in its row, and flags its VMs', async () => {
		// The API's answers with the default backend failing (the API side
		// is tests/integration/test_events.py): this is about the rendering.
		const since = Math.floor(Date.now() / 1000) - 120;
		const cause = { code: 'smb_timeout', message: 'the share did not answer within 1500 ms' };
		await page.route('**/v1/storage/backends', async (rt) => {
			const list = await (await rt.fetch()).json();
			for (const b of list) Object.assign(b, { status: 'unreachable', status_error: cause, status_since: since });
			await rt.fulfill({ json: list });
		});
		await page.route('**/v1/vms?*', async (rt) => {
			const resp = await rt.fetch();
			const list = (await resp.json()).map((v) => ({ ...v, backend_status: 'unreachable', backend_error: cause }));
			await rt.fulfill({ response: resp, json: list });
		});
		await signIn();
		const row = page.locator('#backends tbody tr[data-name="localfile-default"]');
		await row.locator('.status-cause[data-code="smb_timeout"]', { hasText: 'did not answer' }).waitFor();
		assert.match(await row.locator('.status-since').textContent(), /since .*\(2 min ago\)/);
		if ((await api('GET', '/v1/vms')).status !== 200) return;
		const r = await api('POST', '/v1/vms', { name: 'ev-warn', vcpus: 1, memory_mib: 128, image_id: stack.image });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		await page.getByRole('link', { name: 'VMs', exact: true }).click();
		const warn = page.locator('#vms tbody tr[data-name="ev-warn"] .vm-warn');
		await warn.filter({ hasText: /localfile-default is unreachable.*smb_timeout/ }).waitFor();
		await api('DELETE', '/v1/vms/' + r.body.id);
	});

	it('shows a viewer no control that changes something, also after a reload', async () => {
		const u = await api('POST', '/v1/users', { username: 'ui-viewer', password: 'viewer-pass-1234', role: 'viewer' });
		assert.equal(u.status, 201, JSON.stringify(u.body));
		const vms = (await api('GET', '/v1/vms')).status === 200;
		const vm = vms && await api('POST', '/v1/vms', { name: 'ro-vm', vcpus: 1, memory_mib: 128, image_id: stack.image });
		if (vm) assert.equal(vm.status, 201, JSON.stringify(vm.body));
		try {
			await signIn('#/storage', 'ui-viewer', 'viewer-pass-1234');
			const row = page.locator('#backends tbody tr[data-name="localfile-default"]');
			await row.waitFor();
			await page.locator('#signed-in .badge.viewer', { hasText: 'read-only' }).waitFor();
			assert.equal(await page.locator('#add-backend').isVisible(), false);
			// In the page but not shown (the accessibility tree omits them too).
			assert.equal(await row.locator('td.actions button').count(), 2);
			for (const b of await row.locator('td.actions button').all()) assert.equal(await b.isVisible(), false);
			assert.equal(await row.getByRole('button').count(), 0);
			if (vm) {
				await page.getByRole('link', { name: 'VMs', exact: true }).click();
				const vr = page.locator('#vms tbody tr[data-name="ro-vm"]');
				await vr.waitFor();
				assert.equal(await page.locator('#create-vm').isVisible(), false);
				for (const name of ['Start', 'Stop', 'Shutdown', 'Edit', 'Restart', 'Migrate', 'Delete']) {
					const b = vr.locator(`button[aria-label="${name} ro-vm"]`);
					assert.equal(await b.count(), 1, name);
					assert.equal(await b.isVisible(), false, name);
				}
				// Looking is allowed: the snapshot list opens, without its controls.
				await vr.getByRole('button', { name: 'Snapshots of ro-vm' }).click();
				const dlg = page.locator('dialog.snapshots-dialog');
				await dlg.getByText('No snapshots yet.').waitFor();
				assert.equal(await dlg.locator('button', { hasText: 'Take snapshot' }).count(), 1);
				assert.equal(await dlg.locator('button', { hasText: 'Take snapshot' }).isVisible(), false);
				await dlg.getByRole('button', { name: 'Close', exact: true }).first().click();
			}
			// A reload asks the manager who the session is (not the tab's memory).
			await page.evaluate(() => sessionStorage.removeItem('nqrust.role'));
			await page.reload();
			await page.locator('#signed-in .badge.viewer').waitFor();
			assert.equal(await page.locator('#create-vm, #add-backend').first().isVisible(), false);
			await screenshot(page, 'viewer-read-only');
		} finally {
			if (vm) await api('DELETE', '/v1/vms/' + vm.body.id);
			await api('DELETE', '/v1/users/' + u.body.id);
		}
	});

	it('advances the VM wizard with Enter', async () => {
		if ((await api('GET', '/v1/vms')).status !== 200) return;
		await signIn('#/vms');
		await page.getByRole('button', { name: 'Create VM' }).click();
		const wz = page.locator('dialog.wizard');
		await wz.getByLabel('VM name').fill('enter-vm');
		await wz.getByLabel('VM name').press('Enter');
		await page.locator('dialog.wizard[data-step="2"]').waitFor();
		await page.getByLabel('vCPUs').press('Enter');
		await page.locator('dialog.wizard[data-step="3"]').waitFor();
		await wz.getByRole('button', { name: 'Cancel' }).click();
	});
});
