// The base cache of an SMB backend (issue 13): the "Cache" dialog opened
// from a backend's row. GET /v1/storage/backends/{id}/cache lists the
// copies of base images every VM disk is cloned from on the server;
// DELETE …/cache (all unused) and …/cache/{hash} (one) purge them. An
// entry being filled or cloned from is kept and reported, never removed.
import { api } from './api.js';
import { el, fmtBytes, openDialog, toast, errorBox, confirmDialog } from './ui.js';

function when(iso) {
	return iso ? new Date(iso).toLocaleString() : '—';
}

export function cacheDialog(b) {
	const tbody = el('tbody');
	const status = el('div', { 'aria-live': 'polite' });
	const purgeAll = el('button', { type: 'button', class: 'btn danger admin-only', onclick: () => purge(null) },
		'Purge unused entries');
	const closeBtn = el('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Close');
	const body = el('div', { class: 'cache' },
		el('p', { class: 'muted' }, 'Copies of base images on this backend, named by their content hash. ' +
			'The first VM from an image fills an entry; later VMs are cloned from it by the server. ' +
			'Purging removes entries nothing uses; the next VM from that image fills it again.'),
		status,
		el('div', { class: 'table-wrap' }, el('table', { class: 'grid', id: 'cache-entries' },
			el('caption', { class: 'sr-only' }, `Base cache of ${b.name}`),
			el('thead', {}, el('tr', {}, ['Images', 'State', 'Size', 'Allocated', 'Last used', 'In use', 'Actions']
				.map((h) => el('th', { scope: 'col' }, h)))),
			tbody)));
	const d = openDialog({ title: `Base cache of ${b.name}`, body, footer: [purgeAll, closeBtn], wide: true,
		className: 'cache-dialog' });
	const base = `/v1/storage/backends/${encodeURIComponent(b.id)}/cache`;

	async function refresh() {
		try {
			const list = await api('GET', base);
			tbody.replaceChildren(...list.map(row));
			if (!list.length) tbody.append(el('tr', {}, el('td', { colspan: '7', class: 'muted' }, 'The cache is empty.')));
			purgeAll.disabled = !list.some((e) => !e.in_use);
		} catch (ex) {
			status.replaceChildren(await errorBox(ex));
		}
	}

	function row(e) {
		const label = e.images.length ? e.images.join(', ') : e.hash.slice(0, 12);
		return el('tr', { dataset: { hash: e.hash } },
			el('td', {}, el('span', { class: 'name', title: 'sha256 ' + e.hash }, label)),
			el('td', {}, e.state),
			el('td', { class: 'num' }, fmtBytes(e.size_bytes)),
			el('td', { class: 'num' }, e.allocated_bytes == null ? '—' : fmtBytes(e.allocated_bytes)),
			el('td', {}, when(e.last_used)),
			el('td', { class: 'num' }, String(e.in_use)),
			el('td', { class: 'actions' }, el('button', { type: 'button', class: 'btn small danger admin-only',
				disabled: e.in_use > 0, title: e.in_use ? 'In use: being filled or cloned from' : null,
				'aria-label': `Purge ${label}`, onclick: () => purge(e, label) }, 'Purge')));
	}

	async function purge(e, label) {
		const ok = await confirmDialog({ title: e ? `Purge ${label}?` : `Purge the cache of ${b.name}?`,
			danger: true, confirmText: 'Purge',
			message: (e ? 'This entry is removed' : 'Every entry nothing uses is removed') +
				' from the share. VMs are not affected; the next VM from the image copies it again.' });
		if (!ok) return;
		try {
			const r = await api('DELETE', e ? `${base}/${encodeURIComponent(e.hash)}` : base);
			status.replaceChildren();
			const kept = r.kept.length ? `; ${r.kept.length} kept (${r.kept.map((k) => k.reason).join('; ')})` : '';
			toast(`Cache of ${b.name}: ${r.removed.length} removed${kept}.`);
		} catch (ex) {
			status.replaceChildren(await errorBox(ex));
		}
		refresh();
	}

	refresh();
	return d;
}
