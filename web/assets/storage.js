// Storage page: the backends table (live), Add / Edit / Remove dialogs.
import { api } from './api.js';
import { el, fmtBytes, openDialog, toast, errorBox, nextId, serial } from './ui.js';
import { cacheDialog } from './cache.js';

const POLL_MS = 3000;
const EXTERNAL = new Set(['smb', 'nfs', 'iscsi']);
const KIND_LABEL = { localfile: 'Local files', smb: 'SMB / CIFS', nfs: 'NFS', iscsi: 'iSCSI' };
const SMB_VERSIONS = ['default', '2.0', '2.1', '3', '3.0', '3.11'];
export const DEFAULT_MOUNT_BASE = '/var/lib/nqrust/smb';

// Where a probe failure is shown when the API names no field.
const CODE_FIELD = {
	smb_auth_failed: 'password', smb_cred_missing: 'password',
	smb_share_not_found: 'share', smb_not_writable: 'share',
	smb_unreachable: 'server', smb_timeout: 'server',
	smb_bad_option: 'mount_options',
};

export function location_(b) {
	const c = b.config || {};
	if (b.kind === 'smb') {
		const sub = c.subdir ? '/' + c.subdir.replace(/^\/+/, '') : '';
		return `//${c.server}/${c.share}${sub}`;
	}
	return c.path || (b.kind === 'localfile' ? '(host local root)' : '');
}

// The bar's width goes through the CSSOM: a style="" attribute would be
// blocked by the Content-Security-Policy (no 'unsafe-inline').
function fillSpan(pct) {
	const s = el('span');
	s.style.width = pct + '%';
	return s;
}

// One capacity for every kind (the API's): used = total - available.
export function capacityText(cap) {
	if (!cap || !cap.total_bytes) return null;
	const avail = cap.available_bytes ?? cap.free_bytes;
	const pct = Math.min(100, Math.round((cap.used_bytes / cap.total_bytes) * 100));
	return { pct, avail, label: `${fmtBytes(cap.used_bytes)} / ${fmtBytes(cap.total_bytes)} (${pct}%)` };
}

function capacityCell(b) {
	const c = capacityText(b.capacity);
	if (!c) return el('span', { class: 'muted' }, 'unknown');
	const { pct, label, avail } = c;
	return el('div', { class: 'cap' },
		el('div', { class: 'bar' + (pct >= 90 ? ' full' : pct >= 75 ? ' warn' : ''), role: 'meter',
			'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(pct),
			'aria-label': 'Used capacity of ' + b.name },
		fillSpan(pct)),
		el('span', { class: 'cap-text', title: 'used (total minus available) / total' }, label),
		el('span', { class: 'cap-avail' }, `${fmtBytes(avail)} available`));
}

export function sinceText(epochSeconds) {
	if (!epochSeconds) return '';
	const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
	const ago = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86400 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 86400)} d`;
	return `since ${new Date(epochSeconds * 1000).toLocaleString()} (${ago} ago)`;
}

function statusCell(b) {
	// The dot has three colours; the text is the classified cause
	// (auth_failed, access_denied, unreachable, full, …), shown in the row
	// itself with its code, message and since when.
	const st = ['ok', 'unreachable'].includes(b.status) ? b.status : 'error';
	const e = b.status !== 'ok' ? b.status_error : null;
	return el('div', { class: 'status-wrap' },
		el('span', { class: 'status', title: e ? `${b.status}: ${e.message} (${e.code})` : b.status },
			el('span', { class: 'dot ' + st, 'aria-hidden': 'true' }),
			el('span', { class: 'status-text' }, String(b.status).replace(/_/g, ' '))),
		e ? el('span', { class: 'status-cause', dataset: { code: e.code } },
			el('code', {}, e.code), ': ', e.message) : null,
		el('span', { class: 'status-since' }, sinceText(b.status_since)));
}

export function storagePage(main) {
	let timer = null, stopped = false;
	const tbody = el('tbody');
	const note = el('p', { class: 'muted', 'aria-live': 'polite' });
	const addBtn = el('button', { type: 'button', class: 'btn primary admin-only', id: 'add-backend',
		onclick: () => backendDialog(null, refresh) }, 'Add backend');
	main.append(
		el('div', { class: 'page-head' }, el('h1', {}, 'Storage'), addBtn),
		el('p', { class: 'muted' }, 'Where VM disks live. External backends (SMB, NFS, iSCSI) are mounted by the agent on each VM host.'),
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'backends' },
			el('caption', { class: 'sr-only' }, 'Storage backends'),
			el('thead', {}, el('tr', {}, ['Status', 'Name', 'Kind', 'Location', 'Capacity', 'Volumes', 'Actions']
				.map((h) => el('th', { scope: 'col' }, h)))),
			tbody)),
		note);

	function row(b) {
		const tr = el('tr', { dataset: { id: b.id, name: b.name } });
		fill(tr, b);
		return tr;
	}
	function fill(tr, b) {
		const cells = [
			statusCell(b),
			el('span', {}, el('span', { class: 'name' }, b.name),
				b.is_default ? el('span', { class: 'badge default', title: 'New VMs use this backend unless told otherwise' }, 'default') : null),
			el('span', {}, KIND_LABEL[b.kind] || b.kind,
				EXTERNAL.has(b.kind) ? el('span', { class: 'badge external' }, 'external') : null),
			el('code', { class: 'loc' }, location_(b)),
			capacityCell(b),
			el('span', { class: 'num' }, String(b.volume_count ?? 0)),
		];
		const tds = tr.children;
		if (!tds.length) {
			cells.forEach((c) => tr.append(el('td', {}, c)));
			tr.append(el('td', { class: 'actions' },
				b.kind === 'smb' ? el('button', { type: 'button', class: 'btn small', 'aria-label': 'Base cache of ' + b.name,
					title: 'Base images this backend clones VM disks from', onclick: () => cacheDialog(tr._b) }, 'Cache') : null,
				el('button', { type: 'button', class: 'btn small admin-only', 'aria-label': 'Edit ' + b.name,
					onclick: () => backendDialog(tr._b, refresh) }, 'Edit'),
				el('button', { type: 'button', class: 'btn small danger admin-only', 'aria-label': 'Remove ' + b.name,
					onclick: () => removeDialog(tr._b, refresh) }, 'Remove')));
		} else {
			cells.forEach((c, i) => tds[i].replaceChildren(c));
		}
		tr._b = b;
	}

	const refresh = serial(async () => {
		try {
			const list = await api('GET', '/v1/storage/backends');
			if (stopped) return;
			const seen = new Set();
			list.forEach((b, i) => {
				seen.add(b.id);
				let tr = tbody.querySelector(`tr[data-id="${CSS.escape(b.id)}"]`);
				if (!tr) tr = row(b); else fill(tr, b);
				if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
			});
			[...tbody.children].forEach((tr) => { if (!seen.has(tr.dataset.id)) tr.remove(); });
			note.textContent = list.length ? '' : 'No backends yet.';
			main.dataset.loaded = 'true';
		} catch (e) {
			if (!stopped) note.textContent = 'Cannot load backends: ' + e.message;
		}
	});
	async function loop() {
		await refresh();
		if (!stopped) timer = setTimeout(loop, POLL_MS);
	}
	loop();
	return { destroy() { stopped = true; clearTimeout(timer); } };
}

// ---- Add / Edit ------------------------------------------------------------

function field(id, label, input, hint) {
	const hintId = hint ? id + '-hint' : null;
	const errId = id + '-error';
	input.id = id;
	input.setAttribute('aria-describedby', [hintId, errId].filter(Boolean).join(' '));
	return el('div', { class: 'field', dataset: { field: id } },
		el('label', { for: id }, label), input,
		hint ? el('p', { class: 'hint', id: hintId }, hint) : null,
		el('p', { class: 'field-error', id: errId }));
}

// Client-side checks: the same rules as src/common/validate.c, so most
// mistakes are caught before a round trip. The API stays the authority.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;
function checkServer(v) {
	if (!v) return 'Server is required.';
	if (v.length > 256) return 'Server is longer than 256 characters.';
	if (v.startsWith('[')) {
		if (!/^\[[0-9A-Fa-f:.]+\]$/.test(v) || !v.includes(':')) return 'An IPv6 address goes in [] without a zone or port, e.g. [fd00::10].';
		return null;
	}
	if (v.includes(':')) return 'Put an IPv6 address in [], e.g. [fd00::10]; set a port with port=N in Extra mount options.';
	if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v) || v.includes('..')) return 'Server must be a hostname, an IPv4 address, or an IPv6 address in [].';
	return null;
}
function checkShare(v) {
	if (!v) return 'Share name is required.';
	if (v.length > 80) return 'Share name is longer than 80 characters.';
	if (v === '.' || v === '..') return 'Share name cannot be "." or "..".';
	if (/^\s|\s$/.test(v)) return 'Share name cannot start or end with a space.';
	if (/[\\/:*?"<>|,=;[\]+\x00-\x1f]/.test(v)) return 'Only the share name (the part after //server/), without \\ / : * ? " < > | , = ; [ ] +.';
	return null;
}
function checkCred(v, what) {
	if (v.length > 256) return `${what} is longer than 256 characters.`;
	if (/[,=]/.test(v)) return `${what} cannot contain ',' or '='.`;
	if (/^\s/.test(v)) return `${what} cannot start with a space.`;
	if (/[\x00-\x1f\x7f]/.test(v)) return `${what} contains control characters.`;
	return null;
}
function checkSubdir(v) {
	if (!v) return null;
	if (v.startsWith('/')) return 'Subdirectory must be a relative path inside the share.';
	if (/[\\:*?"<>|\x00-\x1f]/.test(v)) return 'Use / between folders; no backslashes or : * ? " < > |.';
	if (v.split('/').some((s) => s === '..')) return 'Subdirectory cannot contain "..".';
	return null;
}
function checkMountOptions(v) {
	if (!v) return null;
	const banned = ['username', 'user', 'password', 'pass', 'credentials', 'cred', 'domain', 'dom',
		'workgroup', 'guest', 'vers', 'uid', 'gid', 'sec'];
	for (const opt of v.split(',')) {
		if (!opt) return 'Empty option: remove the extra comma.';
		const key = opt.split('=')[0].trim().toLowerCase();
		if (banned.includes(key)) return `"${key}" is set by nqrust from the other fields and cannot be given here.`;
	}
	return null;
}
function checkPath(v) {
	if (!v) return null;
	if (!v.startsWith('/')) return 'Must be an absolute path.';
	if (v.split('/').some((s) => s === '..' || s === '.')) return 'Cannot contain "." or ".." components.';
	return null;
}

export function backendDialog(existing, onSaved) {
	const editing = !!existing;
	const c = (existing && existing.config) || {};
	const inp = (attrs) => el('input', attrs);
	const f = {
		name: inp({ name: 'name', required: true, maxlength: '64', autocomplete: 'off', value: existing ? existing.name : '' }),
		kind: el('select', { name: 'kind', disabled: editing },
			Object.entries({ smb: 'SMB / CIFS', localfile: 'Local files' }).map(([v, l]) =>
				el('option', { value: v, selected: (existing ? existing.kind : 'smb') === v }, l))),
		path: inp({ name: 'path', autocomplete: 'off', value: c.path || '', placeholder: 'manager volumes directory' }),
		server: inp({ name: 'server', autocomplete: 'off', spellcheck: 'false', value: c.server || '', placeholder: 'nas.example, 192.0.2.10 or [fd00::10]' }),
		share: inp({ name: 'share', autocomplete: 'off', spellcheck: 'false', value: c.share || '', placeholder: 'vmstore' }),
		username: inp({ name: 'username', autocomplete: 'off', value: c.username || '' }),
		password: inp({ name: 'password', type: 'password', autocomplete: 'new-password' }),
		domain: inp({ name: 'domain', autocomplete: 'off', value: c.domain || '' }),
		smb_version: el('select', { name: 'smb_version' }, SMB_VERSIONS.map((v) =>
			el('option', { value: v, selected: (c.smb_version || 'default') === v }, v === 'default' ? 'default (negotiate)' : v))),
		subdir: inp({ name: 'subdir', autocomplete: 'off', value: c.subdir || '', placeholder: 'optional, e.g. nqrust/vms' }),
		mount_options: inp({ name: 'mount_options', autocomplete: 'off', spellcheck: 'false', value: c.mount_options || '', placeholder: 'e.g. port=4450,noserverino' }),
		mount_base: inp({ name: 'mount_base', autocomplete: 'off', value: c.mount_base || '', placeholder: DEFAULT_MOUNT_BASE }),
		rotate_password: inp({ name: 'rotate_password', type: 'password', autocomplete: 'new-password' }),
		is_default: inp({ name: 'is_default', type: 'checkbox', checked: existing ? existing.is_default : false,
			disabled: existing && existing.is_default }),
	};
	const ids = {};
	const wrap = (key, label, hint) => { ids[key] = nextId('bk-' + key); return field(ids[key], label, f[key], hint); };

	const advId = nextId('bk-adv');
	const advToggle = el('button', { type: 'button', class: 'linkish', 'aria-expanded': 'false', 'aria-controls': advId },
		'Show advanced options');
	const adv = el('fieldset', { class: 'advanced', id: advId, hidden: true },
		el('legend', { class: 'sr-only' }, 'Advanced SMB options'),
		el('div', { class: 'grid2' },
			wrap('domain', 'Domain / Workgroup', 'Only with a username.'),
			wrap('smb_version', 'SMB version', 'SMB1 is not supported.')),
		wrap('subdir', 'Subdirectory', 'Relative path inside the share for this backend\'s volumes.'),
		wrap('mount_options', 'Extra mount options', 'Comma-separated; credentials and versions are set from the fields above.'),
		wrap('mount_base', 'Mount base directory', `Default ${DEFAULT_MOUNT_BASE}; must lie under the agent's mount root.`));
	function setAdvanced(open) {
		adv.hidden = !open;
		advToggle.setAttribute('aria-expanded', String(open));
		advToggle.textContent = open ? 'Hide advanced options' : 'Show advanced options';
	}
	advToggle.addEventListener('click', () => setAdvanced(adv.hidden));
	if (c.domain || (c.smb_version && c.smb_version !== 'default') || c.subdir || c.mount_options || c.mount_base)
		setAdvanced(true);

	const pwField = wrap('password', 'Password', editing ? null : 'Required with a username; leave both blank for guest access.');
	const smbBox = el('div', { class: 'kind-smb' },
		el('div', { class: 'grid2' },
			wrap('server', 'Server', 'Hostname or IP; IPv6 in [].'),
			wrap('share', 'Share name', 'The part after //server/.')),
		el('div', { class: 'grid2' },
			wrap('username', 'Username', 'Blank = guest.'),
			editing ? null : pwField),
		advToggle, adv);
	let rotateBox = null;
	if (editing && existing.kind === 'smb') {
		rotateBox = el('fieldset', { class: 'rotate' },
			el('legend', {}, 'Rotate SMB password'),
			el('p', { class: 'hint' }, existing.has_password
				? 'Enter the new password to replace the stored one without remounting. Leave blank to keep the current password.'
				: 'Guest backend: set a username above and enter its password here to switch to an account.'),
			wrap('rotate_password', 'New SMB password'));
		smbBox.append(rotateBox);
	}
	const lfBox = el('div', { class: 'kind-localfile' },
		wrap('path', 'Directory', 'Absolute directory on the VM host below the agent\'s local root (--local-root, default /var/lib/nqrust/local); blank = the local root itself.'));

	const formError = el('div', { class: 'form-error', 'aria-live': 'assertive' });
	const progress = el('p', { class: 'progress', role: 'status', hidden: true },
		el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' ',
		el('span', { class: 'progress-text' }, ''));
	const form = el('form', { novalidate: true, class: 'backend-form', id: nextId('bk-form') },
		formError,
		el('div', { class: 'grid2' }, wrap('name', 'Name'), wrap('kind', 'Kind')),
		smbBox, lfBox,
		el('div', { class: 'field check' }, f.is_default,
			el('label', { for: (f.is_default.id = nextId('bk-default')) }, 'Make this the default backend for new VMs')),
		progress);
	function syncKind() {
		const smb = f.kind.value === 'smb';
		smbBox.hidden = !smb;
		lfBox.hidden = smb;
	}
	f.kind.addEventListener('change', syncKind);
	syncKind();

	const submit = el('button', { type: 'submit', class: 'btn primary', form: form.id }, editing ? 'Save changes' : 'Add backend');
	const cancel = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Cancel');
	const d = openDialog({ title: editing ? `Edit backend ${existing.name}` : 'Add storage backend',
		body: form, footer: [cancel, submit], wide: true, className: 'backend-dialog' });
	f.name.focus();

	function clearErrors() {
		formError.replaceChildren();
		form.querySelectorAll('.field-error').forEach((p) => (p.textContent = ''));
		form.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
	}
	function showFieldError(key, msg) {
		const input = f[key];
		if (!input || !ids[key]) return false;
		if (adv.contains(input)) setAdvanced(true);
		input.setAttribute('aria-invalid', 'true');
		document.getElementById(ids[key] + '-error').textContent = msg;
		return true;
	}

	function collect() {
		const errs = {};
		const kind = f.kind.value;
		const name = f.name.value.trim();
		if (!NAME_RE.test(name)) errs.name = 'Name must be 1 to 64 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit.';
		const body = { name, kind, config: {} };
		if (kind === 'smb') {
			const cfg = body.config;
			cfg.server = f.server.value.trim();
			cfg.share = f.share.value.trim();
			cfg.username = f.username.value.trim();
			errs.server = checkServer(cfg.server);
			errs.share = checkShare(cfg.share);
			errs.username = checkCred(cfg.username, 'Username');
			if (!editing) {
				const pw = f.password.value;
				if (cfg.username && !pw) errs.password = 'A password is required with a username.';
				else if (!cfg.username && pw) errs.password = 'Guest access (blank username) takes no password.';
				else if (pw.length > 1024) errs.password = 'The password is too long.';
				if (pw) cfg.password = pw;
			}
			cfg.domain = f.domain.value.trim();
			if (cfg.domain) errs.domain = checkCred(cfg.domain, 'Domain') ||
				(cfg.username ? null : 'A domain needs a username.');
			cfg.smb_version = f.smb_version.value;
			cfg.subdir = f.subdir.value.trim();
			errs.subdir = checkSubdir(cfg.subdir);
			cfg.mount_options = f.mount_options.value.trim();
			errs.mount_options = checkMountOptions(cfg.mount_options);
			cfg.mount_base = f.mount_base.value.trim();
			errs.mount_base = checkPath(cfg.mount_base);
			// Blank optional fields are left out on create (server defaults).
			if (!editing) for (const k of ['username', 'domain', 'subdir', 'mount_options', 'mount_base'])
				if (!cfg[k]) delete cfg[k];
			if (!editing && cfg.smb_version === 'default') delete cfg.smb_version;
			if (editing && f.rotate_password.value) body.rotate_password = f.rotate_password.value;
		} else {
			const p = f.path.value.trim();
			errs.path = checkPath(p);
			if (p || editing) body.config.path = p || null;
		}
		if (f.is_default.checked && !(existing && existing.is_default)) body.is_default = true;
		if (editing) delete body.kind;
		return { body, errs };
	}

	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		clearErrors();
		const { body, errs } = collect();
		let first = null;
		for (const [k, msg] of Object.entries(errs))
			if (msg && showFieldError(k, msg) && !first) first = f[k];
		if (first) {
			formError.replaceChildren(el('p', { class: 'alert error', role: 'alert' }, 'Check the highlighted fields.'));
			first.focus();
			return;
		}
		submit.disabled = true;
		progress.hidden = false;
		progress.querySelector('.progress-text').textContent = body.kind === 'smb' || (editing && existing.kind === 'smb')
			? 'Asking the agent to mount the share and check that it is writable…' : 'Saving…';
		try {
			const b = editing
				? await api('PATCH', '/v1/storage/backends/' + encodeURIComponent(existing.id), body)
				: await api('POST', '/v1/storage/backends', body);
			// No secret stays in the DOM once it has been sent.
			f.password.value = '';
			f.rotate_password.value = '';
			d.close();
			toast(editing ? `Saved backend ${b.name}.` : `Added backend ${b.name}.`);
			onSaved && onSaved();
		} catch (ex) {
			const key = (ex.field || '').replace(/^config\./, '') || CODE_FIELD[ex.code];
			let target = key;
			if (key === 'password' && editing) target = 'rotate_password';
			if (ex.code === 'smb_auth_failed' && !f.username.value.trim()) target = 'username';
			if (target && f[target] && ids[target]) {
				showFieldError(target, ex.message);
				f[target].focus();
			}
			formError.replaceChildren(await errorBox(ex));
			if (!target || !ids[target]) formError.querySelector('[role=alert]')?.focus?.();
		} finally {
			submit.disabled = false;
			progress.hidden = true;
		}
	});
	return d;
}

// ---- Remove ----------------------------------------------------------------

export function removeDialog(b, onDone) {
	const status = el('div', { 'aria-live': 'assertive' });
	const go = el('button', { type: 'button', class: 'btn danger', onclick: remove }, 'Remove backend');
	const cancel = el('button', { type: 'button', class: 'btn', autofocus: true, onclick: () => d.close() }, 'Cancel');
	const d = openDialog({ title: `Remove backend ${b.name}?`,
		body: [el('p', {}, `This removes ${b.name} (${location_(b)}) from nqrust`,
			b.kind === 'smb' ? ', deletes its stored credentials and unmounts the share. Files on the share are left alone.' : '. Files are left alone.'),
		status],
		footer: [cancel, go], className: 'remove-dialog' });
	async function remove() {
		go.disabled = true;
		status.replaceChildren();
		try {
			await api('DELETE', '/v1/storage/backends/' + encodeURIComponent(b.id));
			d.close();
			toast(`Removed backend ${b.name}.`);
			onDone && onDone();
		} catch (ex) {
			if (ex.status === 409) status.replaceChildren(await inUseBox(ex));
			else status.replaceChildren(await errorBox(ex));
			go.disabled = false;
		}
	}
}

// 409 backend_in_use: list the volumes and the VMs that own them.
async function inUseBox(ex) {
	const vols = (ex.body && ex.body.error && ex.body.error.volumes) || [];
	const ids = vols.map((v) => (typeof v === 'string' ? v : v.id));
	let volInfo = [], vms = [];
	try { volInfo = await api('GET', '/v1/volumes'); } catch { /* optional detail */ }
	try { vms = await api('GET', '/v1/vms'); } catch { /* VMs may not exist */ }
	const byVol = new Map(volInfo.map((v) => [v.id, v]));
	const vmName = new Map((vms || []).map((v) => [v.id, v.name]));
	const items = ids.map((id) => {
		const v = byVol.get(id);
		const vm = v && v.vm_id;
		return el('li', {}, vm
			? [`VM `, el('strong', {}, vmName.get(vm) || vm), ` (volume ${id})`]
			: [`Volume `, el('code', {}, id), ' (not attached to a VM)']);
	});
	return el('div', { class: 'alert error in-use', role: 'alert' },
		el('p', {}, el('strong', {}, ex.message)),
		el('p', {}, 'Delete these first, then remove the backend:'),
		el('ul', {}, items));
}
