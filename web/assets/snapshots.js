// Disk snapshots of a VM (issue 13): the "Snapshots" dialog opened from a
// VM's row. GET/POST /v1/vms/{id}/snapshots, DELETE …/snapshots/{sid},
// POST /v1/vms/{id}/revert {snapshot_id} (the VM stopped), and a new VM
// made from a snapshot: POST /v1/vms {name, vcpus, memory_mib,
// source_snapshot_id}. A snapshot of a running VM pauses it for the copy
// (crash-consistent); deleting the VM deletes its snapshots.
import { api } from './api.js';
import { el, fmtBytes, openDialog, toast, errorBox, confirmDialog, nextId } from './ui.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

function when(sec) {
	if (!sec) return '';
	return new Date(sec * 1000).toLocaleString();
}

// onChange: called after a revert or a new VM, so the VM list refreshes.
export function snapshotsDialog(vm, onChange) {
	const tbody = el('tbody');
	const status = el('div', { 'aria-live': 'polite' });
	const nameId = nextId('snap-name');
	const name = el('input', { id: nameId, name: 'name', maxlength: '64', autocomplete: 'off',
		placeholder: 'e.g. before-upgrade', autofocus: true });
	const nameErr = el('span', { class: 'field-error', role: 'alert' });
	const createBtn = el('button', { type: 'submit', class: 'btn primary' }, 'Take snapshot');
	const form = el('form', { class: 'inline-form admin-only', onsubmit: (e) => { e.preventDefault(); create(); } },
		el('label', { for: nameId }, 'Snapshot name '), name, ' ', createBtn, ' ', nameErr);
	const stopped = vm.state === 'stopped';
	const body = el('div', { class: 'snapshots' },
		el('p', { class: 'muted' }, vm.state === 'running'
			? `${vm.name} is running: taking a snapshot pauses it for the copy (crash-consistent, like pulling the plug). Revert needs the VM stopped.`
			: 'Snapshots are copies of the VM\'s disk on its backend. Deleting the VM deletes them too.'),
		form, status,
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'snapshots' },
			el('caption', { class: 'sr-only' }, `Snapshots of ${vm.name}`),
			el('thead', {}, el('tr', {}, ['Name', 'State', 'Size', 'Allocated', 'Taken', 'Actions']
				.map((h) => el('th', { scope: 'col' }, h)))),
			tbody)));
	const closeBtn = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Close');
	const d = openDialog({ title: `Snapshots of ${vm.name}`, body, footer: [closeBtn], wide: true,
		className: 'snapshots-dialog' });
	const base = `/v1/vms/${encodeURIComponent(vm.id)}`;

	async function showError(ex) {
		status.replaceChildren(await errorBox(ex));
	}

	async function refresh() {
		try {
			const list = await api('GET', base + '/snapshots');
			tbody.replaceChildren(...list.map(row));
			if (!list.length) {
				tbody.append(el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No snapshots yet.')));
			}
		} catch (ex) {
			await showError(ex);
		}
	}

	function row(s) {
		const btn = (label, fn, opts = {}) => el('button', { type: 'button',
			class: 'btn small admin-only' + (opts.danger ? ' danger' : ''), disabled: !!opts.disabled,
			title: opts.title || null, 'aria-label': `${label} ${s.name}`, onclick: fn }, label);
		const ready = s.state === 'ready';
		return el('tr', { dataset: { id: s.id, name: s.name } },
			el('td', {}, el('span', { class: 'name' }, s.name)),
			el('td', {}, s.state),
			el('td', { class: 'num' }, fmtBytes(s.size_bytes)),
			el('td', { class: 'num' }, s.allocated_bytes == null ? '—' : fmtBytes(s.allocated_bytes)),
			el('td', {}, when(s.created_at)),
			el('td', { class: 'actions' },
				btn('Revert', () => revert(s), { disabled: !ready || !stopped,
					title: stopped ? null : 'Stop the VM to revert its disk' }),
				btn('New VM', () => newVm(s), { disabled: !ready }),
				btn('Delete', () => remove(s), { danger: true })));
	}

	async function create() {
		const n = name.value.trim();
		nameErr.textContent = '';
		if (!NAME_RE.test(n)) {
			nameErr.textContent = 'Use 1 to 64 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit.';
			name.setAttribute('aria-invalid', 'true');
			name.focus();
			return;
		}
		name.removeAttribute('aria-invalid');
		createBtn.disabled = true;
		status.replaceChildren(el('p', { class: 'muted' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Taking the snapshot…'));
		try {
			await api('POST', base + '/snapshots', { name: n });
			status.replaceChildren();
			name.value = '';
			toast(`Snapshot ${n} of ${vm.name} taken.`);
		} catch (ex) {
			if (ex.field === 'name') {
				status.replaceChildren();
				nameErr.textContent = ex.message;
				name.setAttribute('aria-invalid', 'true');
			} else {
				await showError(ex);
			}
		}
		createBtn.disabled = false;
		refresh();
	}

	async function revert(s) {
		const ok = await confirmDialog({ title: `Revert ${vm.name} to ${s.name}?`, danger: true,
			confirmText: 'Revert disk',
			message: `The disk of ${vm.name} is replaced by a copy of snapshot ${s.name}. Changes made since the snapshot are lost. The snapshot stays.` });
		if (!ok) return;
		try {
			await api('POST', base + '/revert', { snapshot_id: s.id });
			toast(`${vm.name} reverted to ${s.name}.`);
			if (onChange) onChange();
		} catch (ex) {
			await showError(ex);
		}
	}

	async function remove(s) {
		const ok = await confirmDialog({ title: `Delete snapshot ${s.name}?`, danger: true,
			confirmText: 'Delete snapshot', message: `Snapshot ${s.name} of ${vm.name} is deleted. This cannot be undone.` });
		if (!ok) return;
		try {
			await api('DELETE', `${base}/snapshots/${encodeURIComponent(s.id)}`);
			toast(`Snapshot ${s.name} deleted.`);
		} catch (ex) {
			await showError(ex);
		}
		refresh();
	}

	function newVm(s) {
		const id = nextId('snapvm');
		const input = el('input', { id, name: 'vm-name', maxlength: '64', autofocus: true,
			value: `${vm.name}-${s.name}`.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63) });
		const err = el('div', { 'aria-live': 'polite' });
		const go = el('button', { type: 'button', class: 'btn primary', onclick: submit }, 'Create VM');
		const cancel = el('button', { type: 'button', class: 'btn', onclick: () => nd.close() }, 'Cancel');
		const nd = openDialog({ title: `New VM from ${s.name}`, footer: [cancel, go], className: 'snapvm-dialog',
			body: el('div', {}, el('p', { class: 'muted' },
				`A new VM whose disk is a copy of snapshot ${s.name}, on the same backend, with ${vm.vcpus} vCPU(s) and ${vm.memory_mib} MiB like ${vm.name}.`),
			el('label', { for: id }, 'VM name '), input, err) });
		async function submit() {
			go.disabled = true;
			try {
				await api('POST', '/v1/vms', { name: input.value.trim(), vcpus: vm.vcpus,
					memory_mib: vm.memory_mib, source_snapshot_id: s.id });
				toast(`VM ${input.value.trim()} is being created from ${s.name}.`);
				nd.close();
				if (onChange) onChange();
			} catch (ex) {
				err.replaceChildren(await errorBox(ex));
				go.disabled = false;
			}
		}
	}

	refresh();
	return d;
}
