// Hosts page (enroll, drain, remove VM hosts) and the Migrate dialog of the
// VMs page. Built on the DESIGN.md §5 contract: GET/POST /v1/hosts,
// PATCH/DELETE /v1/hosts/{id}, POST /v1/vms/{id}/migrate.
import { api, isViewer } from './api.js';
import { el, openDialog, toast, errorBox, confirmDialog, nextId, serial } from './ui.js';

const POLL_MS = 3000;
const FP_RE = /^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/;

// "AB:CD:EF:01…9A:BC": enough to compare by eye; the whole one on hover.
export function shortFingerprint(fp) {
	if (!fp) return '—';
	const pairs = fp.split(':');
	return pairs.length > 6 ? pairs.slice(0, 4).join(':') + '…' + pairs.slice(-2).join(':') : fp;
}

function mib(n) {
	if (n === null || n === undefined || isNaN(n)) return '—';
	return n >= 10240 ? (n / 1024).toFixed(1) + ' GiB' : n + ' MiB';
}

function statusCell(h) {
	const s = h.status || 'unknown';
	const dot = s === 'ok' ? 'ok' : s === 'draining' ? 'unreachable' : 'error';
	return el('td', { class: 'state-cell' },
		el('span', { class: 'status', title: h.last_seen ? 'Last seen ' + new Date(h.last_seen).toLocaleString() : null },
			el('span', { class: 'dot ' + dot, 'aria-hidden': 'true' }), el('span', { class: 'host-status' }, s)),
		h.last_error ? el('p', { class: 'field-error host-error' }, String(h.last_error.message || h.last_error)) : null);
}

async function copyText(text) {
	try {
		await navigator.clipboard.writeText(text);
		toast('Fingerprint copied.');
	} catch {
		toast('Cannot copy here; the full fingerprint is in the tooltip.', 'error');
	}
}

function fingerprintCell(h) {
	if (!h.fingerprint) return el('td', { class: 'muted' }, h.agent_url && h.agent_url.startsWith('unix:') ? 'local socket' : '—');
	return el('td', { class: 'fp' },
		el('code', { title: h.fingerprint, 'data-full': h.fingerprint }, shortFingerprint(h.fingerprint)),
		h.fingerprint_source ? el('span', { class: 'badge ' + (h.fingerprint_source === 'tofu' ? 'external' : 'default'),
			title: h.fingerprint_source === 'tofu' ? 'Trusted on first use: compare it with the agent\'s log' : 'Given at enrollment' },
		h.fingerprint_source === 'tofu' ? 'TOFU' : 'given') : null,
		el('button', { type: 'button', class: 'linkish copy', 'aria-label': `Copy the fingerprint of ${h.name}`,
			onclick: () => copyText(h.fingerprint) }, 'Copy'));
}

export function hostsPage(main) {
	let stopped = false, timer = null;
	const tbody = el('tbody');
	const note = el('p', { class: 'muted', 'aria-live': 'polite' });
	const addBtn = el('button', { type: 'button', class: 'btn primary admin-only', id: 'add-host',
		onclick: () => addHostDialog(refresh) }, 'Add host');
	main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Hosts'), addBtn),
		el('p', { class: 'muted' }, 'Agents the manager places VMs on. A draining host keeps its VMs but gets no new ones.'),
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'hosts' },
			el('caption', { class: 'sr-only' }, 'Hosts'),
			el('thead', {}, el('tr', {}, ['Name', 'Status', 'Agent URL', 'Fingerprint', 'CPUs', 'Memory free / total',
				'VMs', 'Draining', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
			tbody)), note);

	async function setDraining(h, on, box) {
		box.disabled = true;
		try {
			await api('PATCH', '/v1/hosts/' + encodeURIComponent(h.id), { draining: on });
			toast(on ? `${h.name} is draining: no new VMs go there.` : `${h.name} takes new VMs again.`);
		} catch (ex) {
			box.checked = !on;
			toast(`${h.name}: ${ex.message}`, 'error');
		}
		refresh();
	}

	async function remove(h) {
		const ok = await confirmDialog({ title: `Remove host ${h.name}?`, danger: true, confirmText: 'Remove host',
			message: `The manager forgets ${h.name} (${h.agent_url}) and its pinned fingerprint. The agent keeps running; ` +
				'a host with VMs placed on it cannot be removed: migrate or delete them first.' });
		if (!ok) return;
		try {
			await api('DELETE', '/v1/hosts/' + encodeURIComponent(h.id));
			toast(`Removed host ${h.name}.`);
		} catch (ex) {
			const vms = ex.body && ex.body.error && ex.body.error.vms;
			const names = Array.isArray(vms) ? vms.map((v) => (typeof v === 'string' ? v : v.name || v.id)).join(', ') : '';
			toast(`${h.name}: ${ex.message}${names && !ex.message.includes(names) ? ' (' + names + ')' : ''}`, 'error');
		}
		refresh();
	}

	function fill(tr, h) {
		const builtin = h.id === 'local';
		const drainId = nextId('drain');
		const box = el('input', { type: 'checkbox', id: drainId, checked: !!h.draining, disabled: isViewer(),
			'aria-label': `Draining ${h.name}`, onchange: () => setDraining(h, box.checked, box) });
		tr.replaceChildren(
			el('td', {}, el('span', { class: 'name' }, h.name), builtin ? el('span', { class: 'badge default' }, 'built-in') : null),
			statusCell(h),
			el('td', {}, el('code', { class: 'loc' }, h.agent_url || '')),
			fingerprintCell(h),
			el('td', { class: 'num' }, h.cpus != null ? String(h.cpus) : '—'),
			el('td', { class: 'num' }, `${mib(h.memory_free_mib)} / ${mib(h.memory_mib)}`),
			el('td', { class: 'num' }, String(h.vm_count ?? 0)),
			el('td', {}, box),
			el('td', { class: 'actions' }, el('button', { type: 'button', class: 'btn small danger admin-only',
				'aria-label': `Remove ${h.name}`, disabled: builtin,
				title: builtin ? 'The built-in host (the manager\'s --agent) cannot be removed' : null,
				onclick: () => remove(h) }, 'Remove')));
		tr.dataset.status = h.status || '';
	}

	const refresh = serial(async () => {
		try {
			const hosts = await api('GET', '/v1/hosts');
			if (stopped) return;
			const seen = new Set();
			hosts.forEach((h, i) => {
				seen.add(h.id);
				let tr = tbody.querySelector(`tr[data-id="${CSS.escape(h.id)}"]`);
				// Do not rebuild a row the user is working in (focus would jump).
				if (tr && tr.contains(document.activeElement) && tr.dataset.json === JSON.stringify(h)) return;
				if (!tr) tr = el('tr', { dataset: { id: h.id, name: h.name } });
				const focused = tr.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
				tr.dataset.json = JSON.stringify(h);
				fill(tr, h);
				if (focused) tr.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
				if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
			});
			[...tbody.children].forEach((tr) => { if (!seen.has(tr.dataset.id)) tr.remove(); });
			note.textContent = '';
		} catch (e) {
			if (stopped) return;
			if (e.status === 404) {
				stopped = true;
				addBtn.disabled = true;
				note.textContent = 'Host management is not available on this manager (the API answered 404).';
				return;
			}
			note.textContent = 'Cannot load hosts: ' + e.message;
		}
	});
	async function loop() {
		await refresh();
		if (!stopped) timer = setTimeout(loop, POLL_MS);
	}
	loop();
	return { destroy() { stopped = true; clearTimeout(timer); } };
}

// ---- Add host ------------------------------------------------------------------

// Which field an enrollment error belongs to when the API names none.
const CODE_FIELD = { agent_fingerprint_mismatch: 'fingerprint', agent_auth_failed: 'token',
	agent_unavailable: 'agent_url', host_exists: 'agent_url', name_taken: 'name' };

function addHostDialog(onDone) {
	const fields = {};
	const field = (key, label, attrs, hint) => {
		const id = nextId('host-' + key);
		const n = el('input', { id, name: key, ...attrs, 'aria-describedby': `${id}-hint ${id}-error` });
		fields[key] = n;
		return el('div', { class: 'field' }, el('label', { for: id }, label), n,
			hint ? el('p', { class: 'hint', id: id + '-hint' }, hint) : null,
			el('p', { class: 'field-error', id: id + '-error' }));
	};
	const err = el('div', { 'aria-live': 'assertive' });
	const form = el('form', { novalidate: true, id: 'add-host-form' }, err,
		field('name', 'Name', { autocomplete: 'off', maxlength: '63', required: true }, 'How the host is shown and chosen, e.g. rack1-node2.'),
		field('agent_url', 'Agent URL', { autocomplete: 'off', placeholder: 'https://host:port', required: true },
			'The agent\'s TCP listener (--listen-tcp). Always https://: the link carries the token.'),
		field('token', 'Token', { type: 'password', autocomplete: 'new-password', required: true },
			'The agent\'s bearer token (its --token-file). It is stored sealed and never shown again.'),
		field('fingerprint', 'Certificate fingerprint (optional)', { autocomplete: 'off', spellcheck: 'false',
			placeholder: 'AB:CD:…  (SHA-256)' },
		'Blank = trust on first use: the manager records the fingerprint the agent presents now. ' +
			'Compare the recorded fingerprint with the one the agent logged when it started.'));
	const cancel = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Cancel');
	const submit = el('button', { type: 'submit', class: 'btn primary', form: 'add-host-form' }, 'Add host');
	const d = openDialog({ title: 'Add host', body: form, footer: [cancel, submit], className: 'host-dialog' });

	function fieldError(key, msg) {
		const n = fields[key];
		n.setAttribute('aria-invalid', 'true');
		document.getElementById(n.id + '-error').textContent = msg;
		n.focus();
		return false;
	}
	function validate() {
		const name = fields.name.value.trim(), url = fields.agent_url.value.trim();
		const tok = fields.token.value, fp = fields.fingerprint.value.trim();
		if (!name) return fieldError('name', 'Enter a name for the host.');
		if (!/^https:\/\/[^/\s]+$/i.test(url.replace(/\/$/, '')))
			return fieldError('agent_url', 'The agent URL must be https://HOST:PORT: the link carries a token.');
		if (tok.length < 16 || tok.length > 512 || /[^\x21-\x7e]/.test(tok))
			return fieldError('token', 'The token is 16 to 512 printable characters without spaces.');
		if (fp && !FP_RE.test(fp))
			return fieldError('fingerprint', 'A SHA-256 fingerprint is 32 hex pairs (colons optional); leave it blank to trust on first use.');
		return true;
	}
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		err.replaceChildren();
		form.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
		form.querySelectorAll('.field-error').forEach((n) => (n.textContent = ''));
		if (!validate()) return;
		const body = { name: fields.name.value.trim(), agent_url: fields.agent_url.value.trim(), token: fields.token.value };
		if (fields.fingerprint.value.trim()) body.fingerprint = fields.fingerprint.value.trim();
		submit.disabled = true;
		submit.textContent = 'Connecting…';
		try {
			const h = await api('POST', '/v1/hosts', body);
			fields.token.value = '';
			onDone && onDone();
			enrolled(d, h);
		} catch (ex) {
			submit.disabled = false;
			submit.textContent = 'Add host';
			err.replaceChildren(await errorBox(ex));
			const key = ex.field in fields ? ex.field : CODE_FIELD[ex.code];
			if (key) fieldError(key, ex.message);
		} finally {
			body.token = '';
		}
	});
}

// The enrolled host's pinned fingerprint, to compare with the agent's log.
function enrolled(d, h) {
	const body = d.dlg.querySelector('.dialog-body');
	const tofu = h.fingerprint_source === 'tofu';
	body.replaceChildren(el('div', { class: 'alert info', role: 'status', id: 'host-enrolled' },
		el('p', {}, el('strong', {}, `Host ${h.name} enrolled (${h.status}).`)),
		el('p', {}, tofu ? 'Fingerprint recorded on first use:' : 'Pinned fingerprint:'),
		el('p', {}, el('code', { class: 'fp-full' }, h.fingerprint || '—')),
		tofu ? el('p', {}, 'Compare it with the fingerprint the agent logged when it started; if they differ, remove the host.') : null));
	const done = el('button', { type: 'button', class: 'btn primary', onclick: () => d.close() }, 'Done');
	d.dlg.querySelector('.dialog-foot').replaceChildren(done);
	done.focus();
	toast(`Enrolled host ${h.name}.`);
}

// ---- Migrate (VMs page) ----------------------------------------------------------

// Why vm cannot migrate at all (a localfile disk lives on one host), or null.
export function migrateBlocker(backend) {
	if (backend && backend.kind === 'localfile')
		return `Its disk is on the ${backend.name} localfile backend, which belongs to one host: only VMs on a shared (SMB) backend can migrate.`;
	return null;
}

export async function migrateDialog(vm, onDone) {
	const err = el('div', { 'aria-live': 'assertive' });
	const id = nextId('migrate-to');
	const sel = el('select', { id, 'aria-describedby': id + '-hint' });
	const hint = el('p', { class: 'hint', id: id + '-hint' },
		vm.state === 'running' ? `${vm.name} is running: it is stopped gracefully, moved, and started on the target.`
			: `${vm.name} is ${vm.state || 'stopped'}: it moves without starting.`);
	const body = el('div', {}, err, el('p', {}, 'The disk stays where it is on the share; only the VM moves.'),
		el('div', { class: 'field' }, el('label', { for: id }, 'Target host'), sel, hint));
	const cancel = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Cancel');
	const go = el('button', { type: 'button', class: 'btn primary', disabled: true }, 'Migrate');
	const d = openDialog({ title: `Migrate ${vm.name}`, body, footer: [cancel, go], className: 'migrate-dialog' });
	let hosts = [];
	try { hosts = await api('GET', '/v1/hosts'); } catch (ex) { err.replaceChildren(await errorBox(ex)); return; }
	const others = hosts.filter((h) => h.id !== vm.host_id);
	if (!others.length) {
		err.replaceChildren(el('p', { class: 'alert info' }, 'There is no other host to migrate to. Add one on the Hosts page.'));
		return;
	}
	sel.replaceChildren(...others.map((h) => el('option', { value: h.id },
		`${h.name} — ${h.status}${h.draining && h.status !== 'draining' ? ' (draining)' : ''} — ${mib(h.memory_free_mib)} free`)));
	const firstOk = others.find((h) => h.status === 'ok');
	if (firstOk) sel.value = firstOk.id;
	go.disabled = false;
	sel.focus();
	go.addEventListener('click', async () => {
		const target = others.find((h) => h.id === sel.value);
		go.disabled = sel.disabled = true;
		err.replaceChildren(el('div', { class: 'provision', role: 'status' },
			el('span', { class: 'spinner', 'aria-hidden': 'true' }), ` Migrating ${vm.name} to ${target.name}…`));
		try {
			await api('POST', `/v1/vms/${encodeURIComponent(vm.id)}/migrate`, { host_id: target.id });
			d.close();
			toast(`Migrated ${vm.name} to ${target.name}.`);
		} catch (ex) {
			go.disabled = sel.disabled = false;
			err.replaceChildren(await errorBox(ex));
		}
		onDone && onDone();
	});
}
