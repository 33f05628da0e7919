// VMs page (list, actions, Create VM wizard) and Images page. Built on the
// DESIGN.md §5 contract: GET/POST /v1/vms (paged), POST /v1/vms/{id}/start|
// stop|shutdown|restart|migrate, PATCH and DELETE /v1/vms/{id}, GET /v1/images,
// GET /v1/hosts.
import { api, apiAll } from './api.js';
import { el, fmtBytes, openDialog, toast, errorBox, confirmDialog, nextId, serial } from './ui.js';
import { migrateDialog, migrateBlocker } from './hosts.js';
import { snapshotsDialog } from './snapshots.js';

const POLL_MS = 2000;
// The states the API sends while an operation runs (the others: running,
// stopped, error).
const BUSY = new Set(['provisioning', 'migrating', 'stopping']);
const VM_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function unavailable(main, what) {
	main.append(el('div', { class: 'alert info', role: 'status' },
		`${what} is not available on this manager yet (the API answered 404).`));
}

// The API's error is a sentence (a string); tolerate an {message} object.
function errorText(e) {
	return e == null ? '' : typeof e === 'string' ? e : (e.message || String(e));
}

// A VM whose backend is not ok on its host: say so in its row.
function backendWarning(vm, b) {
	if (!vm.backend_status || vm.backend_status === 'ok') return null;
	const e = vm.backend_error;
	return el('span', { class: 'vm-warn', role: 'note' }, `⚠ Storage ${b ? b.name : vm.storage_backend_id} is ${vm.backend_status.replace(/_/g, ' ')}`,
		e ? `: ${e.message} (${e.code})` : '');
}

function stateBadge(vm) {
	const s = vm.state || 'unknown';
	return el('span', { class: 'state ' + s.replace(/[^a-z_-]/g, '') },
		BUSY.has(s) ? el('span', { class: 'spinner', 'aria-hidden': 'true' }) : null, ' ', s);
}

// vCPUs and memory of a stopped VM (PATCH /v1/vms/{id}); the API names the
// field it refuses (out of range, or more memory than the host has free).
function editDialog(vm, onDone) {
	const inputs = {};
	const field = (key, label, attrs) => {
		const id = nextId('vm-edit-' + key);
		inputs[key] = el('input', { id, name: key, type: 'number', required: true, ...attrs,
			'aria-describedby': id + '-error' });
		return el('div', { class: 'field' }, el('label', { for: id }, label), inputs[key],
			el('p', { class: 'field-error', id: id + '-error' }));
	};
	const err = el('div', { 'aria-live': 'assertive' });
	const form = el('form', { novalidate: true, id: 'vm-edit-form' }, err,
		field('vcpus', 'vCPUs', { min: '1', max: '32', value: String(vm.vcpus) }),
		field('memory_mib', 'Memory (MiB)', { min: '64', max: '262144', step: '64', value: String(vm.memory_mib) }));
	const cancel = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Cancel');
	const save = el('button', { type: 'submit', class: 'btn primary', form: 'vm-edit-form' }, 'Save');
	const d = openDialog({ title: `Edit VM ${vm.name}`, body: form, footer: [cancel, save] });
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		err.replaceChildren();
		form.querySelectorAll('.field-error').forEach((n) => (n.textContent = ''));
		const body = { vcpus: Number(inputs.vcpus.value), memory_mib: Number(inputs.memory_mib.value) };
		save.disabled = true;
		try {
			await api('PATCH', '/v1/vms/' + encodeURIComponent(vm.id), body);
			d.close();
			toast(`Saved ${vm.name}: ${body.vcpus} vCPUs, ${body.memory_mib} MiB.`);
			onDone && onDone();
		} catch (ex) {
			save.disabled = false;
			if (ex.field in inputs) {
				inputs[ex.field].setAttribute('aria-invalid', 'true');
				document.getElementById(inputs[ex.field].id + '-error').textContent = ex.message;
				inputs[ex.field].focus();
			} else {
				err.replaceChildren(await errorBox(ex));
			}
		}
	});
}

export function vmsPage(main) {
	let stopped = false, timer = null;
	const tbody = el('tbody');
	const note = el('p', { class: 'muted', 'aria-live': 'polite' });
	const createBtn = el('button', { type: 'button', class: 'btn primary admin-only', id: 'create-vm',
		onclick: () => wizard(refresh) }, 'Create VM');
	main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Virtual machines'), createBtn),
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'vms' },
			el('caption', { class: 'sr-only' }, 'Virtual machines'),
			el('thead', {}, el('tr', {}, ['Name', 'State', 'vCPUs', 'Memory', 'Backend', 'Host', 'Actions']
				.map((h) => el('th', { scope: 'col' }, h)))),
			tbody)), note);
	let backends = new Map();

	async function act(vm, action) {
		try {
			if (action === 'delete') {
				const ok = await confirmDialog({ title: `Delete VM ${vm.name}?`, danger: true, confirmText: 'Delete VM',
					message: `This stops ${vm.name} and deletes its disk and its snapshots. This cannot be undone.` });
				if (!ok) return;
				await api('DELETE', '/v1/vms/' + encodeURIComponent(vm.id));
				toast(`Deleted VM ${vm.name}.`);
			} else {
				// Stop cuts the power: say so and ask; Shutdown asks the guest.
				if (action === 'stop' && !await confirmDialog({ title: `Power off VM ${vm.name}?`, danger: true,
					confirmText: 'Power off', message: `Stop powers ${vm.name} off at once, like pulling the plug: ` +
						'its guest gets no chance to shut down and unsaved data in it is lost. Use Shutdown to let the guest power off by itself.' }))
					return;
				if (action === 'shutdown') toast(`Asked ${vm.name} to shut down; it is powered off if it has not within 60 s.`);
				await api('POST', `/v1/vms/${encodeURIComponent(vm.id)}/${action}`);
				if (action !== 'shutdown') toast(`${action[0].toUpperCase() + action.slice(1)} requested for ${vm.name}.`);
			}
		} catch (ex) {
			toast(`${vm.name}: ${ex.message}`, 'error');
		}
		refresh();
	}

	function fill(tr, vm) {
		const s = vm.state || '';
		const busy = BUSY.has(s);
		const running = s === 'running';
		const btn = (label, action, disabled) => el('button', { type: 'button', class: 'btn small admin-only' + (action === 'delete' ? ' danger' : ''),
			disabled, 'aria-label': `${label} ${vm.name}`, onclick: () => act(vm, action) }, label);
		const b = backends.get(vm.storage_backend_id);
		const blocker = migrateBlocker(b);
		tr.replaceChildren(
			el('td', {}, el('a', { class: 'name', href: '#/vms/' + encodeURIComponent(vm.id),
				title: `Details and console of ${vm.name}` }, vm.name)),
			el('td', { class: 'state-cell' }, stateBadge(vm),
				vm.error ? el('span', { class: 'field-error' }, ' ' + errorText(vm.error)) : null,
				backendWarning(vm, b)),
			el('td', { class: 'num' }, String(vm.vcpus ?? '')),
			el('td', { class: 'num' }, vm.memory_mib != null ? vm.memory_mib + ' MiB' : ''),
			el('td', {}, b ? b.name : (vm.storage_backend_id || '')),
			el('td', { class: 'host-cell' }, vm.host_name || vm.host_id || 'local',
				vm.ha ? el('span', { class: 'badge default', title: 'HA: restarted on another host if this one fails' }, 'HA') : null),
			el('td', { class: 'actions' },
				btn('Start', 'start', busy || running),
				btn('Shutdown', 'shutdown', busy || !running),
				btn('Stop', 'stop', busy || !running),
				el('button', { type: 'button', class: 'btn small admin-only', disabled: busy || running,
					title: running ? 'Stop the VM to change its vCPUs or memory' : null, 'aria-label': `Edit ${vm.name}`,
					onclick: () => editDialog(vm, refresh) }, 'Edit'),
				btn('Restart', 'restart', busy || !running),
				el('button', { type: 'button', class: 'btn small admin-only', disabled: busy || !!blocker,
					title: blocker ? 'Cannot migrate: ' + blocker : null, 'aria-label': `Migrate ${vm.name}`,
					onclick: () => migrateDialog(vm, refresh) }, 'Migrate'),
				el('button', { type: 'button', class: 'btn small', disabled: busy,
					'aria-label': `Snapshots of ${vm.name}`, onclick: () => snapshotsDialog(vm, refresh) }, 'Snapshots'),
				btn('Delete', 'delete', false)));
		tr.dataset.state = s;
	}

	const refresh = serial(async () => {
		try {
			const [vms, bks] = await Promise.all([apiAll('/v1/vms'),
				api('GET', '/v1/storage/backends').catch(() => [])]);
			if (stopped) return;
			backends = new Map(bks.map((b) => [b.id, b]));
			const seen = new Set();
			vms.forEach((vm, i) => {
				seen.add(vm.id);
				let tr = tbody.querySelector(`tr[data-id="${CSS.escape(vm.id)}"]`);
				const focusedLabel = tr && tr.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
				if (!tr) tr = el('tr', { dataset: { id: vm.id, name: vm.name } });
				fill(tr, vm);
				if (focusedLabel) tr.querySelector(`[aria-label="${CSS.escape(focusedLabel)}"]`)?.focus();
				if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
			});
			[...tbody.children].forEach((tr) => { if (!seen.has(tr.dataset.id)) tr.remove(); });
			note.textContent = vms.length ? `${vms.length} VM${vms.length === 1 ? '' : 's'}.` : 'No VMs yet. Create one with the Create VM button.';
		} catch (e) {
			if (stopped) return;
			if (e.status === 404) {
				stopped = true;
				createBtn.disabled = true;
				main.querySelector('.table-wrap').remove();
				unavailable(main, 'VM management');
				return;
			}
			note.textContent = 'Cannot load VMs: ' + e.message;
		}
	});
	async function loop() {
		await refresh();
		if (!stopped) timer = setTimeout(loop, POLL_MS);
	}
	loop();
	return { destroy() { stopped = true; clearTimeout(timer); } };
}

// ---- Create VM wizard --------------------------------------------------------

const STEPS = ['Basics', 'Resources', 'Image', 'Boot Source', 'Review'];

export function wizard(onCreated) {
	const data = { name: '', vcpus: 1, memory_mib: 512, image_id: null, storage_backend_id: null, host_id: '', ha: false };
	let step = 0, images = null, backends = null, hosts = [];
	const stepper = el('ol', { class: 'stepper', 'aria-label': 'Steps' });
	const panel = el('div', { class: 'step-panel', tabindex: '-1' });
	const err = el('div', { 'aria-live': 'assertive' });
	const back = el('button', { type: 'button', class: 'btn', onclick: () => go(step - 1) }, 'Back');
	const next = el('button', { type: 'button', class: 'btn primary', onclick: onNext }, 'Next');
	const cancel = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Cancel');
	const d = openDialog({ title: 'Create VM', body: [stepper, err, panel], footer: [cancel, back, next],
		wide: true, className: 'wizard' });
	d.dlg.dataset.step = '1';
	// Enter in a field means Next (or Create VM on the last step).
	panel.addEventListener('keydown', (e) => {
		if (e.key !== 'Enter' || e.isComposing || !(e.target instanceof HTMLInputElement) || next.disabled) return;
		e.preventDefault();
		onNext();
	});

	const input = (label, attrs, hint) => {
		const id = nextId('wz');
		const n = el('input', { id, ...attrs, 'aria-describedby': id + '-error' });
		return [n, el('div', { class: 'field' }, el('label', { for: id }, label), n,
			hint ? el('p', { class: 'hint' }, hint) : null, el('p', { class: 'field-error', id: id + '-error' }))];
	};
	function fieldError(n, msg) {
		n.setAttribute('aria-invalid', 'true');
		document.getElementById(n.id + '-error').textContent = msg;
		n.focus();
		return false;
	}

	let validators = [];
	async function render() {
		stepper.replaceChildren(...STEPS.map((s, i) => el('li', {
			class: i === step ? 'current' : i < step ? 'done' : '', 'aria-current': i === step ? 'step' : null },
		el('span', { class: 'n' }, String(i + 1)), ' ', s)));
		err.replaceChildren();
		panel.replaceChildren(el('h3', {}, `Step ${step + 1} of 5: ${STEPS[step]}`));
		back.disabled = step === 0;
		next.textContent = step === 4 ? 'Create VM' : 'Next';
		d.dlg.dataset.step = String(step + 1);
		validators = [];
		if (step === 0) {
			const [n, fl] = input('VM name', { value: data.name, autocomplete: 'off', maxlength: '63', required: true },
				'Letters, digits, ".", "_" or "-".');
			panel.append(fl);
			validators.push(() => {
				data.name = n.value.trim();
				return VM_NAME_RE.test(data.name) || fieldError(n, 'Name must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit.');
			});
			n.focus();
		} else if (step === 1) {
			const [c, fc] = input('vCPUs', { type: 'number', min: '1', max: '32', value: String(data.vcpus), required: true });
			const [m, fm] = input('Memory (MiB)', { type: 'number', min: '128', max: '262144', step: '64', value: String(data.memory_mib), required: true });
			panel.append(el('div', { class: 'grid2' }, fc, fm));
			validators.push(() => {
				const v = Number(c.value);
				if (!Number.isInteger(v) || v < 1 || v > 32) return fieldError(c, 'Between 1 and 32 vCPUs.');
				data.vcpus = v;
				const mm = Number(m.value);
				if (!Number.isInteger(mm) || mm < 128 || mm > 262144) return fieldError(m, 'Between 128 and 262144 MiB.');
				data.memory_mib = mm;
				return true;
			});
			c.focus();
		} else if (step === 2) {
			panel.append(el('p', { class: 'muted' }, 'Loading images…'));
			try { images = images || await api('GET', '/v1/images'); } catch (ex) {
				panel.replaceChildren(await errorBox(ex));
				validators.push(() => false);
				return;
			}
			panel.lastChild.remove();
			if (!images.length) {
				panel.append(el('p', {}, 'No base images are available. Put an image in the agent\'s image directory.'));
				validators.push(() => false);
				return;
			}
			if (!data.image_id) data.image_id = images[0].id ?? images[0].name;
			const fs = el('fieldset', { class: 'choices' }, el('legend', {}, 'Base image (the rootfs is a sparse clone of it)'),
				images.map((im) => {
					const id = nextId('img');
					const val = im.id ?? im.name;
					return el('div', { class: 'choice' },
						el('input', { type: 'radio', name: 'image', id, value: val, checked: val === data.image_id,
							onchange: () => { data.image_id = val; } }),
						el('label', { for: id }, im.name, ' ', el('span', { class: 'muted' }, fmtBytes(im.size_bytes))));
				}));
			panel.append(fs);
			fs.querySelector('input:checked')?.focus();
			validators.push(() => !!data.image_id);
		} else if (step === 3) {
			panel.append(el('p', { class: 'muted' }, 'Loading storage backends…'));
			try { backends = await api('GET', '/v1/storage/backends'); } catch (ex) {
				panel.replaceChildren(await errorBox(ex));
				validators.push(() => false);
				return;
			}
			panel.lastChild.remove();
			if (!data.storage_backend_id || !backends.some((b) => b.id === data.storage_backend_id))
				data.storage_backend_id = (backends.find((b) => b.is_default) || backends[0] || {}).id || null;
			const id = nextId('wz-backend');
			const sel = el('select', { id, 'aria-describedby': id + '-hint' }, backends.map((b) => {
				const cap = b.capacity, avail = cap && (cap.available_bytes ?? cap.free_bytes);
				const free = avail != null ? `${fmtBytes(avail)} available of ${fmtBytes(cap.total_bytes)}` : 'capacity unknown';
				return el('option', { value: b.id, selected: b.id === data.storage_backend_id },
					`${b.name} (${b.kind}) — ${free}${b.is_default ? ' — default' : ''}${b.status !== 'ok' ? ' — ' + b.status : ''}`);
			}));
			sel.addEventListener('change', () => { data.storage_backend_id = sel.value; showSel(); });
			const detail = el('p', { class: 'hint', id: id + '-hint' });
			function showSel() {
				const b = backends.find((x) => x.id === sel.value);
				detail.textContent = b ? `The VM's root disk is cloned from the image onto ${b.name}` +
					(b.kind === 'smb' ? ` (//${b.config.server}/${b.config.share}).` : '.') : '';
			}
			showSel();
			panel.append(el('div', { class: 'field' }, el('label', { for: id }, 'Storage backend'), sel, detail,
				el('p', { class: 'field-error', id: id + '-error' })));
			hosts = await api('GET', '/v1/hosts').catch(() => []);
			panel.append(...placementFields(data, hosts));
			validators.push(() => {
				data.storage_backend_id = sel.value;
				const b = backends.find((x) => x.id === sel.value);
				if (!b) return fieldError(sel, 'Choose a storage backend.');
				if (b.status !== 'ok') return fieldError(sel, `${b.name} is ${b.status}; choose a backend that is ok.`);
				return true;
			});
			sel.focus();
		} else {
			const b = (backends || []).find((x) => x.id === data.storage_backend_id);
			const im = (images || []).find((x) => (x.id ?? x.name) === data.image_id);
			const rows = [['Name', data.name], ['vCPUs', data.vcpus], ['Memory', data.memory_mib + ' MiB'],
				['Image', im ? im.name : data.image_id], ['Storage backend', b ? `${b.name} (${b.kind})` : data.storage_backend_id],
				['Host', data.host_id ? (hosts.find((h) => h.id === data.host_id) || {}).name || data.host_id : 'Automatic'],
				['HA', data.ha ? 'yes: restarted on another host if its host fails' : 'no']];
			panel.append(el('dl', { class: 'review' }, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))])));
			next.focus();
		}
	}
	function go(n) {
		if (n < 0 || n > 4) return;
		step = n;
		render();
	}
	async function onNext() {
		panel.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
		panel.querySelectorAll('.field-error').forEach((n) => (n.textContent = ''));
		for (const v of validators) if (!v()) return;
		if (step < 4) return go(step + 1);
		next.disabled = back.disabled = true;
		const prog = el('div', { class: 'provision', role: 'status' },
			el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ',
			el('span', { class: 'text' }, `Creating ${data.name}: cloning the image onto the storage backend…`),
			el('progress', { 'aria-label': 'Provisioning progress' }));
		panel.append(prog);
		try {
			const req = { name: data.name, vcpus: data.vcpus, memory_mib: data.memory_mib,
				image_id: data.image_id, storage_backend_id: data.storage_backend_id };
			if (data.host_id) req.host_id = data.host_id;
			if (data.ha) req.ha = true;
			const vm = await api('POST', '/v1/vms', req);
			onCreated && onCreated();
			await followProvisioning(vm, prog);
			d.close();
			toast(`Created VM ${vm.name}.`);
			onCreated && onCreated();
		} catch (ex) {
			prog.remove();
			next.disabled = back.disabled = false;
			err.replaceChildren(await errorBox(ex));
			const map = { name: 0, vcpus: 1, memory_mib: 1, image_id: 2, storage_backend_id: 3, host_id: 3, ha: 3 };
			if (ex.field in map && map[ex.field] !== step) { go(map[ex.field]); err.replaceChildren(await errorBox(ex)); }
		}
	}
	// Show the VM's state until it leaves the busy states (or 60 polls).
	async function followProvisioning(vm, prog) {
		for (let i = 0; i < 60 && BUSY.has(vm.state); i++) {
			prog.querySelector('.text').textContent = `Creating ${vm.name}: ${vm.state}…`;
			await new Promise((r) => setTimeout(r, 1000));
			try { vm = await api('GET', '/v1/vms/' + encodeURIComponent(vm.id)); } catch { break; }
		}
		if (vm.state === 'error')
			throw Object.assign(new Error(errorText(vm.error) || `provisioning ${vm.name} failed`), { code: 'vm_failed' });
	}
	render();
}

// The wizard's host choice (default Automatic: the manager places the VM)
// and the HA checkbox; both write into data as they change.
function placementFields(data, hosts) {
	const id = nextId('wz-host');
	const sel = el('select', { id, 'aria-describedby': id + '-hint ' + id + '-error' },
		el('option', { value: '', selected: !data.host_id }, 'Automatic (the manager chooses a suitable host)'),
		hosts.map((h) => el('option', { value: h.id, selected: h.id === data.host_id },
			`${h.name} — ${h.status}${h.memory_free_mib != null ? ` — ${h.memory_free_mib} MiB free` : ''}`)));
	sel.addEventListener('change', () => { data.host_id = sel.value; });
	const haId = nextId('wz-ha');
	const ha = el('input', { type: 'checkbox', id: haId, checked: data.ha, 'aria-describedby': haId + '-hint',
		onchange: () => { data.ha = ha.checked; } });
	return [el('div', { class: 'field' }, el('label', { for: id }, 'Host'), sel,
		el('p', { class: 'hint', id: id + '-hint' }, 'Automatic picks a host that is ok, not draining, has the backend and enough free memory.'),
		el('p', { class: 'field-error', id: id + '-error' })),
	el('div', { class: 'field check' }, ha, el('label', { for: haId }, 'High availability (HA)')),
	el('p', { class: 'hint', id: haId + '-hint' }, 'If the VM\'s host stays unreachable past its lease, the manager starts it on another host (shared backends only).')];
}

// ---- Images -------------------------------------------------------------------

export function imagesPage(main) {
	const tbody = el('tbody');
	main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Images')),
		el('p', { class: 'muted' }, 'Base images VMs are cloned from (from the agent\'s image directory).'),
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'images' },
			el('caption', { class: 'sr-only' }, 'Images'),
			el('thead', {}, el('tr', {}, ['Name', 'Size'].map((h) => el('th', { scope: 'col' }, h)))), tbody)));
	api('GET', '/v1/images').then((list) => {
		tbody.replaceChildren(...list.map((im) => el('tr', {}, el('td', {}, im.name), el('td', { class: 'num' }, fmtBytes(im.size_bytes)))));
		if (!list.length) main.append(el('p', { class: 'muted' }, 'No images.'));
	}).catch((e) => {
		main.querySelector('.table-wrap').remove();
		if (e.status === 404) unavailable(main, 'The image list');
		else errorBox(e).then((b) => main.append(b));
	});
	return {};
}
