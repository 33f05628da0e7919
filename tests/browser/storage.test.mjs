// The web UI end to end in headless Chromium against a real smbd, agent
// and manager (issue 5): log in, add SMB backends through the dialog
// (password and guest), a wrong password shown beside its field, live
// capacity, password rotation, Remove refused while a volume or VM lives
// on the backend and allowed after, and the VM wizard when the manager
// has VM routes.
//
// The tests share one stack and one browser, nothing else: each runs in a
// tab of its own, signs in itself, creates the backends and VMs it needs
// under names of its own and removes them. Any one runs alone:
//   node --test --test-name-pattern 'rotates' tests/browser/
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { apiClient, launchBrowser, rawGet, screenshot, startStack } from './harness.mjs';

let stack, browser, page, api;
let vmsAvailable = false;
let consoleErrors = []; // script errors and CSP violations of the current test

// A name no other test uses (backends and VMs are named by the tests).
let serial = 0;
function uniq(base) {
	serial += 1;
	return `${base}-${process.pid.toString(36)}-${serial}`;
}

async function signIn() {
	await page.goto(stack.url + '/#/storage');
	await page.getByLabel('Username').fill('admin');
	await page.getByLabel('Password').fill(stack.admin_password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByRole('navigation', { name: 'Main' }).waitFor();
	await row('localfile-default').waitFor();
}

function smbConfig(share, withPassword) {
	const cfg = { server: stack.smb.host, share, mount_options: `port=${stack.smb.port}` };
	if (withPassword) Object.assign(cfg, { username: stack.smb.user, password: stack.smb.password });
	return cfg;
}

// An SMB backend made through the API, for tests about what comes after.
async function apiBackend(base, share = 'secure') {
	const name = uniq(base);
	const r = await api('POST', '/v1/storage/backends', { name, kind: 'smb', config: smbConfig(share, share === 'secure') });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

async function removeBackend(name) {
	const b = await backendByName(name);
	if (b) assert.equal((await api('DELETE', '/v1/storage/backends/' + b.id)).status, 204);
}

async function openAddDialog() {
	await page.getByRole('button', { name: 'Add backend' }).click();
	const dlg = page.locator('dialog.backend-dialog');
	await dlg.waitFor();
	return dlg;
}

async function fillSmb(dlg, { name, share, username, password, advanced = true }) {
	await dlg.getByLabel('Name', { exact: true }).fill(name);
	await dlg.getByLabel('Kind').selectOption('smb');
	await dlg.getByLabel('Server').fill(stack.smb.host);
	await dlg.getByLabel('Share name').fill(share);
	await dlg.getByLabel('Username').fill(username || '');
	await dlg.getByLabel('Password', { exact: true }).fill(password || '');
	if (advanced) {
		await dlg.getByRole('button', { name: 'Show advanced options' }).click();
		await dlg.getByLabel('Extra mount options').fill(`port=${stack.smb.port}`);
	}
}

// Signed in, the VM wizard open and past its first step (the name).
async function openWizard(vmName) {
	await signIn();
	await page.getByRole('link', { name: 'VMs', exact: true }).click();
	await page.getByRole('button', { name: 'Create VM' }).click();
	const wz = page.locator('dialog.wizard');
	await wz.getByLabel('VM name').fill(vmName);
	await wz.getByRole('button', { name: 'Next' }).click();
	return wz;
}

function row(name) {
	return page.locator(`#backends tbody tr[data-name="${name}"]`);
}

async function backendByName(name) {
	const r = await api('GET', '/v1/storage/backends');
	assert.equal(r.status, 200);
	return r.body.find((b) => b.name === name);
}

// No password value may remain anywhere in the page once a form is done.
async function assertNoSecretInDom(secret) {
	const html = await page.content();
	assert.ok(!html.includes(secret), 'the password is still in the DOM');
	const values = await page.$$eval('input', (ns) => ns.map((n) => n.value));
	assert.ok(!values.includes(secret), 'an input still holds the password');
}

describe('web UI', { timeout: 600_000 }, () => {
	before(async () => {
		stack = await startStack();
		api = await apiClient(stack.url, stack.admin_user, stack.admin_password);
		vmsAvailable = (await api('GET', '/v1/vms')).status === 200;
		browser = await launchBrowser();
	});
	after(async () => {
		if (browser) await browser.close();
		if (stack) await stack.stop();
	});
	// A fresh tab per test: no session, no page state from another test.
	beforeEach(async () => {
		consoleErrors = [];
		page = await browser.ctx.newPage();
		page.on('pageerror', (e) => consoleErrors.push(e.message));
		// HTTP error replies the UI handles (401, 409, 422) are logged by
		// Chromium as "Failed to load resource"; anything else is a defect.
		page.on('console', (m) => {
			if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
		});
	});
	// Every test also fails on a script error or CSP violation it caused.
	afterEach(async () => {
		await page.close();
		assert.deepEqual([...new Set(consoleErrors)], []);
	});

	it('serves the UI with a strict CSP and refuses paths outside it', async () => {
		const r = await fetch(stack.url + '/');
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
		assert.match(r.headers.get('content-type'), /^text\/html/);
		for (const p of ['/assets/../index.html', '/assets/%2e%2e/index.html', '/docs/../README.md',
			'/assets/.secret.js', '/assets/app.js.bak']) {
			const x = await rawGet(stack.url, p);
			assert.equal(x.status, 404, p);
		}
		const js = await fetch(stack.url + '/assets/app.js');
		assert.match(js.headers.get('content-type'), /^text\/javascript/);
		const md = await fetch(stack.url + '/docs/troubleshooting-smb.md');
		assert.equal(md.status, 200);
	});

	it('logs in (and rejects a wrong password)', async () => {
		await page.goto(stack.url + '/#/storage');
		await page.getByLabel('Username').fill('admin');
		await page.getByLabel('Password').fill('not-the-password');
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.locator('#login-error', { hasText: 'invalid username or password' }).waitFor();
		await page.getByLabel('Password').fill(stack.admin_password);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.getByRole('navigation', { name: 'Main' }).waitFor();
		for (const link of ['VMs', 'Storage', 'Images'])
			await page.getByRole('link', { name: link, exact: true }).waitFor();
		await row('localfile-default').waitFor();
		await assertNoSecretInDom(stack.admin_password);
	});

	it('keeps focus inside the Add dialog and returns it on Escape', async () => {
		await signIn();
		const dlg = await openAddDialog();
		for (let i = 0; i < 25; i++) {
			await page.keyboard.press('Tab');
			assert.ok(await dlg.evaluate((d) => d.contains(document.activeElement)), `focus left the dialog after ${i + 1} Tabs`);
		}
		await page.keyboard.press('Escape');
		await dlg.waitFor({ state: 'detached' });
		assert.equal(await page.evaluate(() => document.activeElement.id), 'add-backend');
	});

	it('checks fields on the client before calling the API', async () => {
		await signIn();
		const dlg = await openAddDialog();
		await dlg.getByLabel('Name', { exact: true }).fill('bad one');
		await dlg.getByLabel('Server').fill('nas:445');
		await dlg.getByLabel('Share name').fill('a/b');
		await dlg.getByLabel('Username').fill('someone');
		await dlg.getByRole('button', { name: 'Add backend' }).click();
		const server = dlg.getByLabel('Server');
		assert.equal(await server.getAttribute('aria-invalid'), 'true');
		assert.match(await dlg.locator('[data-field] .field-error').nth(2).textContent(), /IPv6|\[\]/);
		assert.equal(await dlg.getByLabel('Share name').getAttribute('aria-invalid'), 'true');
		assert.equal(await dlg.getByLabel('Password', { exact: true }).getAttribute('aria-invalid'), 'true');
		await dlg.getByRole('button', { name: 'Cancel' }).click();
		await dlg.waitFor({ state: 'detached' });
		assert.equal(await backendByName('bad one'), undefined);
	});

	it('shows a wrong SMB password beside the password field and keeps the form', async () => {
		await signIn();
		const name = uniq('nas-wrong');
		const dlg = await openAddDialog();
		await fillSmb(dlg, { name, share: 'secure', username: stack.smb.user, password: 'definitely-wrong' });
		await dlg.getByRole('button', { name: 'Add backend' }).click();
		const pw = dlg.getByLabel('Password', { exact: true });
		const pwError = dlg.locator(`#${await pw.getAttribute('id')}-error`);
		await pwError.filter({ hasText: /rejected|password/ }).waitFor();
		assert.equal(await pw.getAttribute('aria-invalid'), 'true');
		const box = dlg.locator('.alert[data-code="smb_auth_failed"]');
		await box.waitFor();
		assert.match(await box.textContent(), /Cause:.*What to do:/s);
		assert.ok(await box.getByRole('link', { name: /Troubleshooting guide/ }).count() === 1);
		// Everything typed is still there.
		assert.equal(await dlg.getByLabel('Name', { exact: true }).inputValue(), name);
		assert.equal(await dlg.getByLabel('Server').inputValue(), stack.smb.host);
		assert.equal(await dlg.getByLabel('Share name').inputValue(), 'secure');
		assert.equal(await dlg.getByLabel('Username').inputValue(), stack.smb.user);
		assert.equal(await dlg.getByLabel('Extra mount options').inputValue(), `port=${stack.smb.port}`);
		assert.equal(await pw.inputValue(), 'definitely-wrong');
		await screenshot(page, 'storage-add-auth-error');
		await dlg.getByRole('button', { name: 'Cancel' }).click();
		await dlg.waitFor({ state: 'detached' });
		assert.equal(await backendByName(name), undefined);
	});

	it('adds an SMB backend with a password through the dialog', async () => {
		await signIn();
		const name = uniq('nas-secure');
		const dlg = await openAddDialog();
		await fillSmb(dlg, { name, share: 'secure', username: stack.smb.user, password: stack.smb.password });
		assert.equal(await dlg.getByLabel('SMB version').inputValue(), 'default');
		assert.equal(await dlg.getByLabel('Mount base directory').getAttribute('placeholder'), '/var/lib/nqrust/smb');
		await screenshot(page, 'storage-add-dialog-advanced');
		await dlg.getByRole('button', { name: 'Add backend' }).click();
		await dlg.waitFor({ state: 'detached' });
		await row(name).waitFor();
		await assertNoSecretInDom(stack.smb.password);
		const b = await backendByName(name);
		assert.equal(b.kind, 'smb');
		assert.equal(b.has_password, true);
		assert.equal(b.config.username, stack.smb.user);
		await removeBackend(name);
	});

	it('adds a guest SMB backend through the dialog', async () => {
		await signIn();
		const name = uniq('nas-guest');
		const dlg = await openAddDialog();
		await fillSmb(dlg, { name, share: 'guest' });
		await dlg.getByRole('button', { name: 'Add backend' }).click();
		await dlg.waitFor({ state: 'detached' });
		await row(name).waitFor();
		const b = await backendByName(name);
		assert.equal(b.has_password, false);
		assert.equal(b.config.username, '');
		await removeBackend(name);
	});

	it('shows status, kind, location and live capacity in the table', async () => {
		const { name } = await apiBackend('nas-table');
		await signIn();
		const r = row(name);
		await r.locator('.dot.ok').waitFor();
		await r.locator('.cap-text').filter({ hasText: /\/.*\(\d+%\)/ }).waitFor();
		assert.match(await r.locator('.cap-text').textContent(), /^[\d.]+ \w?i?B \/ [\d.]+ \w+B \(\d+%\)$/);
		assert.equal(await r.locator('.badge.external').textContent(), 'external');
		assert.equal(await r.locator('code.loc').textContent(), `//${stack.smb.host}/secure`);
		assert.match(await r.locator('.status').getAttribute('title'), /ok/);
		// The bar is as long as the percentage says.
		const pct = Number(await r.getByRole('meter').getAttribute('aria-valuenow'));
		const [bar, fill] = await r.locator('.bar').evaluate((n) => [n.clientWidth, n.firstChild.clientWidth]);
		assert.ok(Math.abs(fill - (bar * pct) / 100) <= 2, `bar ${fill}px of ${bar}px for ${pct}%`);
		assert.equal(await row('localfile-default').locator('.badge.default').count(), 1);
		assert.equal(await row('localfile-default').locator('.badge.external').count(), 0);
		await screenshot(page, 'storage-page');
		await removeBackend(name);
	});

	it('rotates the SMB password from the Edit dialog', async () => {
		const { name } = await apiBackend('nas-rotate');
		await signIn();
		await row(name).getByRole('button', { name: 'Edit ' + name }).click();
		const dlg = page.locator('dialog.backend-dialog');
		const rotate = dlg.locator('fieldset.rotate');
		await rotate.waitFor();
		assert.match(await rotate.locator('legend').textContent(), /Rotate SMB password/);
		const bg = await rotate.evaluate((n) => getComputedStyle(n).backgroundColor);
		assert.equal(bg, 'rgb(255, 247, 230)'); // amber
		// Every config field is editable.
		for (const label of ['Server', 'Share name', 'Username', 'Domain / Workgroup', 'SMB version',
			'Subdirectory', 'Extra mount options', 'Mount base directory'])
			assert.ok(await dlg.getByLabel(label, { exact: true }).isEditable(), label);
		assert.equal(await dlg.getByLabel('Extra mount options').inputValue(), `port=${stack.smb.port}`);
		await dlg.getByLabel('New SMB password').fill(stack.smb.password);
		await dlg.getByRole('button', { name: 'Save changes' }).click();
		await dlg.waitFor({ state: 'detached' });
		await page.locator('.toast', { hasText: 'Saved backend ' + name }).waitFor();
		await assertNoSecretInDom(stack.smb.password);
		const b = await backendByName(name);
		assert.equal(b.has_password, true);
		assert.equal(b.status, 'ok');
		await removeBackend(name);
	});

	it('refuses Remove while a volume lives on the backend, then removes it', async () => {
		const b = await apiBackend('nas-inuse');
		const name = b.name;
		await signIn();
		const v = await api('POST', '/v1/volumes', { backend_id: b.id, size_bytes: 1 << 20 });
		assert.equal(v.status, 201, JSON.stringify(v.body));
		// The table refreshes by itself: the count goes to 1 without a reload.
		await row(name).locator('td', { hasText: /^1$/ }).waitFor();

		await row(name).getByRole('button', { name: 'Remove ' + name }).click();
		const dlg = page.locator('dialog.remove-dialog');
		await dlg.getByRole('button', { name: 'Remove backend' }).click();
		const inUse = dlg.locator('.in-use');
		await inUse.waitFor();
		assert.ok((await inUse.textContent()).includes(v.body.id), 'the 409 names the volume');
		await dlg.getByRole('button', { name: 'Cancel' }).click();
		await dlg.waitFor({ state: 'detached' });
		assert.ok(await backendByName(name));

		assert.equal((await api('DELETE', '/v1/volumes/' + v.body.id)).status, 204);
		await row(name).getByRole('button', { name: 'Remove ' + name }).click();
		await dlg.getByRole('button', { name: 'Remove backend' }).click();
		await dlg.waitFor({ state: 'detached' });
		await row(name).waitFor({ state: 'detached' });
		assert.equal(await backendByName(name), undefined);
	});

	it('lists and purges an SMB backend\'s base cache', async () => {
		const b = await apiBackend('nas-cache');
		const v = await api('POST', '/v1/volumes', { backend_id: b.id, image: stack.image });
		assert.equal(v.status, 201, JSON.stringify(v.body));
		try {
			await signIn();
			assert.equal(await row('localfile-default').getByRole('button', { name: /^Base cache/ }).count(), 0,
				'a localfile backend has no cache');
			await row(b.name).getByRole('button', { name: 'Base cache of ' + b.name }).click();
			const dlg = page.locator('dialog.cache-dialog');
			const entry = dlg.locator('#cache-entries tbody tr[data-hash]');
			await entry.waitFor();
			assert.equal(await entry.count(), 1);
			assert.equal(await entry.locator('td').first().textContent(), stack.image);
			assert.equal(await entry.locator('td').nth(1).textContent(), 'ready');
			await screenshot(page, 'storage-base-cache');
			await entry.getByRole('button', { name: 'Purge ' + stack.image }).click();
			await page.locator('dialog', { hasText: 'Purge ' + stack.image + '?' }).getByRole('button', { name: 'Purge', exact: true }).click();
			await page.locator('.toast', { hasText: `Cache of ${b.name}: 1 removed.` }).waitFor();
			await dlg.getByText('The cache is empty.').waitFor();
			assert.deepEqual((await api('GET', `/v1/storage/backends/${b.id}/cache`)).body, []);
			await dlg.getByRole('button', { name: 'Close', exact: true }).last().click();
		} finally {
			await api('DELETE', '/v1/volumes/' + v.body.id);
			await removeBackend(b.name);
		}
	});

	it('creates a VM on the SMB backend with the wizard, stops and starts it', async (t) => {
		if (!vmsAvailable) {
			t.skip('the manager has no /v1/vms yet (issue 4)');
			return;
		}
		const guest = await apiBackend('nas-vms', 'guest');
		const vmName = uniq('web');
		const wz = await openWizard(vmName);
		await wz.getByLabel('vCPUs').fill('1');
		await wz.getByLabel('Memory (MiB)').fill('256');
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.getByRole('radio', { name: new RegExp(stack.image) }).check();
		await wz.getByRole('button', { name: 'Next' }).click();
		const sel = wz.getByLabel('Storage backend');
		await sel.waitFor();
		const def = (await api('GET', '/v1/storage/backends')).body.find((b) => b.is_default);
		assert.equal(await sel.inputValue(), def.id, 'the default backend is preselected');
		const options = await sel.locator('option').allTextContents();
		assert.equal(options.length, (await api('GET', '/v1/storage/backends')).body.length);
		assert.ok(options.every((o) => /available of/.test(o)), 'each option shows total and available space, as the Storage rows');
		await sel.selectOption(guest.id);
		await screenshot(page, 'wizard-step4');
		await wz.getByRole('button', { name: 'Next' }).click();
		try {
			await page.locator('dialog.wizard[data-step="5"]').waitFor();
		} catch (e) {
			await screenshot(page, 'failure-wizard');
			throw e;
		}
		await wz.locator('dl.review', { hasText: guest.name }).waitFor();
		await wz.getByRole('button', { name: 'Create VM' }).click();
		await wz.waitFor({ state: 'detached', timeout: 120_000 });
		const vmRow = page.locator(`#vms tbody tr[data-name="${vmName}"]`);
		await vmRow.waitFor();
		const vm = (await api('GET', '/v1/vms')).body.find((x) => x.name === vmName);
		assert.equal(vm.storage_backend_id, guest.id);
		if ((await vmRow.getAttribute('data-state')) !== 'running') {
			await vmRow.getByRole('button', { name: 'Start ' + vmName, exact: true }).click();
		}
		await page.locator(`#vms tr[data-name="${vmName}"][data-state="running"]`).waitFor({ timeout: 120_000 });
		await screenshot(page, 'vms-page');
		await vmRow.getByRole('button', { name: 'Stop ' + vmName, exact: true }).click();
		// Stop is a power-off: it asks first.
		const ask = page.locator('dialog[open]', { hasText: `Power off VM ${vmName}?` });
		await ask.waitFor();
		await ask.getByRole('button', { name: 'Power off', exact: true }).click();
		await page.locator(`#vms tr[data-name="${vmName}"][data-state="stopped"]`).waitFor({ timeout: 120_000 });
		await vmRow.getByRole('button', { name: 'Start ' + vmName, exact: true }).click();
		await page.locator(`#vms tr[data-name="${vmName}"][data-state="running"]`).waitFor({ timeout: 120_000 });

		// Remove refused while the VM's disk is on the backend.
		await page.getByRole('link', { name: 'Storage', exact: true }).click();
		await row(guest.name).getByRole('button', { name: 'Remove ' + guest.name }).click();
		const dlg = page.locator('dialog.remove-dialog');
		await dlg.getByRole('button', { name: 'Remove backend' }).click();
		await dlg.locator('.in-use', { hasText: vmName }).waitFor();
		await dlg.getByRole('button', { name: 'Cancel' }).click();

		await page.getByRole('link', { name: 'VMs', exact: true }).click();
		await vmRow.getByRole('button', { name: 'Delete ' + vmName, exact: true }).click();
		await page.locator('dialog').getByRole('button', { name: 'Delete VM' }).click();
		await vmRow.waitFor({ state: 'detached', timeout: 120_000 });
		await removeBackend(guest.name);
	});

	it('creates a VM on the default localfile backend with the wizard', async (t) => {
		if (!vmsAvailable) {
			t.skip('the manager has no /v1/vms yet (issue 4)');
			return;
		}
		const vmName = uniq('local');
		const wz = await openWizard(vmName);
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.getByRole('radio', { name: new RegExp(stack.image) }).check();
		await wz.getByRole('button', { name: 'Next' }).click();
		const sel = wz.getByLabel('Storage backend');
		await sel.waitFor();
		assert.equal(await sel.inputValue(), 'localfile-default', 'the default backend is preselected');
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.locator('dl.review', { hasText: 'localfile-default' }).waitFor();
		await wz.getByRole('button', { name: 'Create VM' }).click();
		await wz.waitFor({ state: 'detached', timeout: 120_000 });
		const vmRow = page.locator(`#vms tbody tr[data-name="${vmName}"]`);
		await page.locator(`#vms tr[data-name="${vmName}"][data-state="running"]`).waitFor({ timeout: 120_000 });
		const vm = (await api('GET', '/v1/vms')).body.find((x) => x.name === vmName);
		assert.equal(vm.storage_backend_id, 'localfile-default');
		assert.match(vm.volume.path, /\/local-[0-9a-f-]{36}\.raw$/);
		assert.ok(fs.existsSync(vm.volume.path), 'the rootfs is a file on the host');
		await vmRow.getByRole('button', { name: 'Delete ' + vmName, exact: true }).click();
		await page.locator('dialog').getByRole('button', { name: 'Delete VM' }).click();
		await vmRow.waitFor({ state: 'detached', timeout: 120_000 });
		assert.ok(!fs.existsSync(vm.volume.path), 'delete removed the file');
	});

	it('removes the guest backend once nothing lives on it', async () => {
		const { name } = await apiBackend('nas-remove', 'guest');
		await signIn();
		await row(name).getByRole('button', { name: 'Remove ' + name }).click();
		const dlg = page.locator('dialog.remove-dialog');
		await dlg.getByRole('button', { name: 'Remove backend' }).click();
		await dlg.waitFor({ state: 'detached' });
		await row(name).waitFor({ state: 'detached' });
		assert.equal(await backendByName(name), undefined);
	});

	it('shows the SMB runbook with cause, confirmation and fix for every code', async () => {
		await signIn();
		await page.goto(stack.url + '/#/runbook/smb_timeout');
		await page.locator('#rb-smb_timeout.highlight').waitFor();
		for (const code of ['smb_auth_failed', 'smb_share_not_found', 'smb_bad_option', 'smb_unreachable',
			'smb_timeout', 'smb_cred_missing', 'smb_not_writable', 'smb_mount_failed', 'cifs_unavailable']) {
			const text = await page.locator('#rb-' + code).textContent();
			assert.match(text, /Cause: \S.*How to confirm: \S.*How to fix: \S/s, code);
		}
	});

	it('ran without script errors or CSP violations', async () => {
		// Every page and both dialogs once; afterEach fails on any error.
		await signIn();
		await openAddDialog();
		await page.keyboard.press('Escape');
		for (const route of ['storage', 'vms', 'images', 'runbook/smb_timeout']) {
			await page.goto(`${stack.url}/#/${route}`);
			await page.getByRole('navigation', { name: 'Main' }).waitFor();
		}
		if (vmsAvailable) {
			await page.getByRole('link', { name: 'VMs', exact: true }).click();
			await page.getByRole('button', { name: 'Create VM' }).click();
			await page.locator('dialog.wizard').waitFor();
			await page.keyboard.press('Escape');
		}
		assert.deepEqual([...new Set(consoleErrors)], []);
	});

	it('left no password in the daemon logs', async () => {
		// Each secret goes through the daemons here: a backend with the SMB
		// password, a refused wrong one, a UI sign-in with the admin's.
		const { name } = await apiBackend('nas-logs');
		const wrong = await api('POST', '/v1/storage/backends', { name: uniq('nas-wrong'), kind: 'smb',
			config: { ...smbConfig('secure', true), password: 'definitely-wrong' } });
		assert.equal(wrong.status, 422, JSON.stringify(wrong.body));
		await signIn();
		await removeBackend(name);
		for (const log of [stack.manager_log, stack.agent_log]) {
			const text = fs.readFileSync(log, 'utf8');
			assert.ok(text.length > 0, log);
			for (const secret of [stack.smb.password, stack.admin_password, 'definitely-wrong'])
				assert.ok(!text.includes(secret), `${log} contains a password`);
		}
	});
});
