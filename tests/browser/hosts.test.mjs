// The Hosts page and migration end to end in headless Chromium (issue 12):
// a second agent listens on loopback TCP with TLS and a token (stack.py
// --second-agent); the test enrolls it through the Add host dialog (an
// http:// URL, a wrong token and a wrong fingerprint each shown beside
// their field, then trust on first use showing the agent's real
// fingerprint), sees it ok, drains it, creates a VM on it with the
// wizard's host choice and HA, migrates it back in the UI, and removes
// the host (refused while a VM is placed there). Also: every page of a
// paged GET /v1/vms is shown. Fake Firecracker.
//
//   node --test tests/browser/hosts.test.mjs
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { apiClient, launchBrowser, screenshot, startStack } from './harness.mjs';

let stack, browser, page, api;
let hostsApi = false; // POST /v1/hosts exists (i12hosts)
let consoleErrors = [];
const SECOND = 'second-host';

let serial = 0;
function uniq(base) {
	serial += 1;
	return `${base}-${process.pid.toString(36)}-${serial}`;
}

async function signIn(hash = '#/hosts') {
	await page.goto(stack.url + '/' + hash);
	await page.getByLabel('Username').fill('admin');
	await page.getByLabel('Password').fill(stack.admin_password);
	await page.getByRole('button', { name: 'Sign in' }).click();
	await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

const hostRow = (name) => page.locator(`#hosts tbody tr[data-name="${name}"]`);
const vmRow = (name) => page.locator(`#vms tbody tr[data-name="${name}"]`);

async function hostByName(name) {
	const r = await api('GET', '/v1/hosts');
	assert.equal(r.status, 200, JSON.stringify(r.body));
	return r.body.find((h) => h.name === name);
}

// The second agent, enrolled (through the API when an earlier test did
// not do it in the UI), so each test runs alone too.
async function ensureSecond() {
	const h = await hostByName(SECOND);
	if (h) return h;
	const r = await api('POST', '/v1/hosts', { name: SECOND, agent_url: stack.second_agent.url,
		token: stack.second_agent.token });
	assert.equal(r.status, 201, JSON.stringify(r.body));
	return r.body;
}

async function vmByName(name) {
	const r = await api('GET', '/v1/vms?limit=1000');
	assert.equal(r.status, 200);
	return r.body.find((v) => v.name === name);
}

async function waitFor(what, fn, timeoutMs = 120_000) {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > end) throw new Error('timed out waiting for ' + what);
		await new Promise((r) => setTimeout(r, 500));
	}
}

// Field error text of the labelled input in the Add host dialog.
async function fieldError(dlg, label) {
	const input = dlg.getByLabel(label, { exact: true });
	const id = await input.getAttribute('id');
	return dlg.locator(`#${id}-error`);
}

describe('Hosts and migration', { timeout: 900_000 }, () => {
	before(async () => {
		stack = await startStack({ secondAgent: true });
		api = await apiClient(stack.url, stack.admin_user, stack.admin_password);
		const probe = await api('POST', '/v1/hosts', {});
		hostsApi = probe.status !== 404 && probe.status !== 405;
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

	it('lists the built-in local host, which cannot be removed', async () => {
		await signIn();
		const local = page.locator('#hosts tbody tr[data-id="local"]');
		await local.waitFor();
		assert.equal(await local.getAttribute('data-status'), 'ok');
		const rm = local.getByRole('button', { name: 'Remove local' });
		assert.ok(await rm.isDisabled());
		assert.match(await rm.getAttribute('title'), /built-in/);
		assert.equal(await page.getByRole('link', { name: 'Hosts', exact: true }).getAttribute('aria-current'), 'page');
	});

	it('shows every page of a paged VM list, not only the first', async () => {
		// The manager's answer is replaced by 1234 VMs served 100 at most
		// per page with X-Total-Count, as GET /v1/vms does.
		const TOTAL = 1234, CAP = 100;
		const all = Array.from({ length: TOTAL }, (_, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
			name: `paged-${i}`, state: 'stopped', vcpus: 1, memory_mib: 128, storage_backend_id: 'localfile-default',
			host_id: 'local', host_name: 'local', ha: false }));
		const asked = [];
		await page.route(/\/v1\/vms(\?.*)?$/, (route) => {
			const u = new URL(route.request().url());
			const limit = Math.min(Number(u.searchParams.get('limit') || CAP), CAP);
			const offset = Number(u.searchParams.get('offset') || 0);
			asked.push([limit, offset]);
			route.fulfill({ status: 200, contentType: 'application/json', headers: { 'X-Total-Count': String(TOTAL) },
				body: JSON.stringify(all.slice(offset, offset + limit)) });
		});
		await signIn('#/vms');
		await page.locator('#vms tbody tr[data-name="paged-1233"]').waitFor();
		assert.equal(await page.locator('#vms tbody tr').count(), TOTAL);
		assert.ok(asked.length >= Math.ceil(TOTAL / CAP), JSON.stringify(asked.slice(0, 3)));
		assert.ok(asked.every(([l]) => l > 0), 'every request names a limit');
	});

	it('enrolls a TLS agent through the Add host dialog', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		assert.ok(stack.second_agent.url.startsWith('https://'));
		const existing = await hostByName(SECOND);
		if (existing) assert.equal((await api('DELETE', '/v1/hosts/' + existing.id)).status, 204);
		await signIn();
		await page.getByRole('button', { name: 'Add host' }).click();
		const dlg = page.locator('dialog.host-dialog');
		await dlg.getByLabel('Name', { exact: true }).fill(SECOND);
		assert.equal(await dlg.getByLabel('Token', { exact: true }).getAttribute('type'), 'password');
		await dlg.getByText(/Blank = trust on first use/).waitFor();

		// http:// never leaves the browser.
		await dlg.getByLabel('Agent URL').fill(stack.second_agent.url.replace('https:', 'http:'));
		await dlg.getByLabel('Token', { exact: true }).fill(stack.second_agent.token);
		await dlg.getByRole('button', { name: 'Add host' }).click();
		assert.match(await (await fieldError(dlg, 'Agent URL')).textContent(), /https:\/\//);

		// A wrong token: the API's refusal beside the token field.
		await dlg.getByLabel('Agent URL').fill(stack.second_agent.url);
		await dlg.getByLabel('Token', { exact: true }).fill('wrong-token-' + 'x'.repeat(20));
		await dlg.getByRole('button', { name: 'Add host' }).click();
		await dlg.locator('.alert.error[data-code="agent_auth_failed"]').waitFor();
		assert.notEqual(await (await fieldError(dlg, 'Token')).textContent(), '');

		// A fingerprint that is not the agent's.
		await dlg.getByLabel('Token', { exact: true }).fill(stack.second_agent.token);
		await dlg.getByLabel(/Certificate fingerprint/).fill(Array(32).fill('AB').join(':'));
		await dlg.getByRole('button', { name: 'Add host' }).click();
		await dlg.locator('.alert.error[data-code="agent_fingerprint_mismatch"]').waitFor();
		assert.match(await (await fieldError(dlg, 'Certificate fingerprint (optional)')).textContent(), /AB:AB/i);

		// Blank: trust on first use; the recorded fingerprint is the agent's.
		await dlg.getByLabel(/Certificate fingerprint/).fill('');
		await dlg.getByRole('button', { name: 'Add host' }).click();
		const done = dlg.locator('#host-enrolled');
		await done.waitFor();
		if (stack.second_agent.fingerprint)
			assert.equal(await done.locator('code').textContent(), stack.second_agent.fingerprint);
		await screenshot(page, 'host-enrolled');
		await dlg.getByRole('button', { name: 'Done' }).click();
		const row = hostRow(SECOND);
		await page.locator(`#hosts tr[data-name="${SECOND}"][data-status="ok"]`).waitFor({ timeout: 60_000 });
		const h = await hostByName(SECOND);
		assert.equal(h.fingerprint_source, 'tofu');
		assert.equal(await row.locator('.fp code').getAttribute('title'), h.fingerprint);
		assert.ok(h.fingerprint.startsWith((await row.locator('.fp code').textContent()).split('…')[0]));
		assert.notEqual((await row.locator('td').nth(4).textContent()).trim(), '—', 'CPUs shown');
		// The token is nowhere in the page or the API's answer.
		assert.ok(!(await page.content()).includes(stack.second_agent.token));
		assert.ok(!JSON.stringify((await api('GET', '/v1/hosts')).body).includes(stack.second_agent.token));
		await screenshot(page, 'hosts-page');
	});

	it('drains a host from its row and takes it back', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		const h = await ensureSecond();
		await signIn();
		const box = hostRow(SECOND).getByRole('checkbox', { name: 'Draining ' + SECOND });
		await box.check();
		await page.locator(`#hosts tr[data-name="${SECOND}"][data-status="draining"]`).waitFor();
		assert.equal((await api('GET', '/v1/hosts/' + h.id)).body.draining, true);
		await box.uncheck();
		await page.locator(`#hosts tr[data-name="${SECOND}"][data-status="ok"]`).waitFor();
		assert.equal((await api('GET', '/v1/hosts/' + h.id)).body.draining, false);
	});

	it('creates a VM on the chosen host with HA and migrates it in the UI', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		const h = await ensureSecond();
		const bk = await api('POST', '/v1/storage/backends', { name: uniq('shared'), kind: 'smb',
			config: { server: stack.smb.host, share: 'guest', mount_options: `port=${stack.smb.port}` } });
		assert.equal(bk.status, 201, JSON.stringify(bk.body));
		const vmName = uniq('mig');
		try {
			await createAndMigrate(h, bk.body, vmName);
		} finally {
			const vm = await vmByName(vmName);
			if (vm) await waitFor('the VM to be deleted', async () =>
				[204, 404].includes((await api('DELETE', '/v1/vms/' + vm.id)).status));
			await waitFor('the backend removal', async () =>
				[204, 404].includes((await api('DELETE', '/v1/storage/backends/' + bk.body.id)).status), 60_000);
		}
	});

	async function createAndMigrate(h, backend, vmName) {
		await signIn('#/vms');
		await page.getByRole('button', { name: 'Create VM' }).click();
		const wz = page.locator('dialog.wizard');
		await wz.getByLabel('VM name').fill(vmName);
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.getByLabel('Memory (MiB)').fill('128');
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.getByRole('radio', { name: new RegExp(stack.image) }).check();
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.getByLabel('Storage backend').selectOption(backend.id);
		const hostSel = wz.getByLabel('Host', { exact: true });
		assert.equal(await hostSel.inputValue(), '', 'Automatic is the default');
		assert.match(await hostSel.locator('option').first().textContent(), /Automatic/);
		await hostSel.selectOption(h.id);
		await wz.getByLabel('High availability (HA)').check();
		await wz.getByRole('button', { name: 'Next' }).click();
		await wz.locator('dl.review', { hasText: SECOND }).waitFor();
		await wz.getByRole('button', { name: 'Create VM' }).click();
		await wz.waitFor({ state: 'detached', timeout: 180_000 });
		const tr = vmRow(vmName);
		await tr.locator('.host-cell', { hasText: SECOND }).waitFor();
		let vm = await vmByName(vmName);
		assert.equal(vm.host_id, h.id);
		assert.equal(vm.ha, true);
		const path = vm.volume && vm.volume.path;

		// Remove refused while the VM is placed on the host.
		await page.getByRole('link', { name: 'Hosts', exact: true }).click();
		await hostRow(SECOND).getByRole('button', { name: 'Remove ' + SECOND }).click();
		await page.locator('dialog').getByRole('button', { name: 'Remove host' }).click();
		await page.locator('.toast.error', { hasText: SECOND }).waitFor();
		assert.ok(await hostByName(SECOND), 'the host is still enrolled');

		// Migrate to the local host through the dialog.
		await page.getByRole('link', { name: 'VMs', exact: true }).click();
		await tr.getByRole('button', { name: 'Migrate ' + vmName }).click();
		const md = page.locator('dialog.migrate-dialog');
		await md.getByLabel('Target host').selectOption('local');
		await screenshot(page, 'migrate-dialog');
		await md.getByRole('button', { name: 'Migrate' }).click();
		// Done (the dialog closes) or refused (the API's error in it).
		const refused = md.locator('.alert.error');
		await Promise.race([md.waitFor({ state: 'detached', timeout: 180_000 }),
			refused.waitFor({ timeout: 180_000 }).catch(() => {})]);
		if (await refused.count()) assert.fail('migrate refused: ' + await refused.textContent());
		await tr.locator('.host-cell', { hasText: /^local/ }).waitFor();
		vm = await vmByName(vmName);
		assert.equal(vm.host_id, 'local');
		if (path) assert.equal(vm.volume.path.split('/').pop(), path.split('/').pop(), 'the disk did not move');

		await tr.getByRole('button', { name: 'Delete ' + vmName, exact: true }).click();
		await page.locator('dialog').getByRole('button', { name: 'Delete VM' }).click();
		await tr.waitFor({ state: 'detached', timeout: 120_000 });
	}

	it('disables Migrate for a VM on a localfile backend and says why', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		const vmName = uniq('lf');
		const r = await api('POST', '/v1/vms', { name: vmName, vcpus: 1, memory_mib: 128, image_id: stack.image,
			storage_backend_id: 'localfile-default', host_id: 'local' });
		assert.equal(r.status, 201, JSON.stringify(r.body));
		await signIn('#/vms');
		const btn = vmRow(vmName).getByRole('button', { name: 'Migrate ' + vmName });
		await btn.waitFor();
		await waitFor('the VM to settle', async () => !(await btn.isDisabled()) || /localfile/.test(await btn.getAttribute('title') || ''));
		assert.ok(await btn.isDisabled());
		assert.match(await btn.getAttribute('title'), /localfile/);
		// The API refuses it as well (409 backend_not_shared).
		const m = await api('POST', `/v1/vms/${r.body.id}/migrate`, { host_id: (await ensureSecond()).id });
		assert.equal(m.status, 409);
		assert.equal(m.body.error.code, 'backend_not_shared');
		await waitFor('the VM to be deleted', async () => [204, 404].includes((await api('DELETE', '/v1/vms/' + r.body.id)).status));
	});

	it('left the agent token in no daemon log', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		await ensureSecond(); // at least one enrollment sent it
		for (const f of [stack.manager_log, stack.agent_log, stack.second_agent.log]) {
			const text = fs.readFileSync(f, 'utf8');
			assert.ok(text.length > 0, f + ' is empty');
			assert.ok(!text.includes(stack.second_agent.token), 'the token is in ' + f);
		}
	});

	it('removes a host after confirmation', async (t) => {
		if (!hostsApi) return t.skip('the manager has no POST /v1/hosts yet (i12hosts)');
		await ensureSecond();
		await signIn();
		await hostRow(SECOND).getByRole('button', { name: 'Remove ' + SECOND }).click();
		const dlg = page.locator('dialog');
		await dlg.getByRole('button', { name: 'Cancel' }).click();
		assert.ok(await hostByName(SECOND), 'Cancel keeps the host');
		await hostRow(SECOND).getByRole('button', { name: 'Remove ' + SECOND }).click();
		await dlg.getByRole('button', { name: 'Remove host' }).click();
		await hostRow(SECOND).waitFor({ state: 'detached' });
		assert.equal(await hostByName(SECOND), undefined);
	});
});
