// Events: the manager's persisted event log (GET /v1/events): who did
// what to which object, on which host, how it ended and why. A pane at
// the bottom of every page (like Proxmox's task log) with the newest
// events, refreshing; and the Events page with filters and paging.
import { apiPage } from './api.js';
import { el } from './ui.js';

const POLL_MS = 3000;
const PANE_ROWS = 15;
const PANE_KEY = 'nqrust.events.hidden';
const HEADERS = ['Time', 'Actor', 'Action', 'Object', 'Host', 'Outcome', 'Cause'];

function fmtTime(ms) {
	const d = new Date(ms);
	const p = (n) => String(n).padStart(2, '0');
	return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Where an object is shown in the UI (null: nowhere to go).
function objectHref(e) {
	if (e.object_type === 'vm') return '#/vms/' + encodeURIComponent(e.object_id);
	if (e.object_type === 'backend') return '#/storage';
	if (e.object_type === 'host') return '#/hosts';
	return null;
}

function eventRow(e) {
	const failed = e.outcome !== 'ok';
	const href = objectHref(e);
	const obj = [el('span', { class: 'muted' }, e.object_type + ' '),
		href ? el('a', { href }, e.object_id) : el('span', {}, e.object_id)];
	return el('tr', { class: failed ? 'ev-failed' : null, dataset: { id: e.id, action: e.action, outcome: e.outcome } },
		el('td', { class: 'num ev-time' }, el('time', { datetime: new Date(e.at).toISOString() }, fmtTime(e.at))),
		el('td', {}, e.actor),
		el('td', {}, el('code', {}, e.action)),
		el('td', { class: 'ev-object' }, obj),
		el('td', {}, e.host_id || ''),
		el('td', {}, el('span', { class: 'outcome ' + (failed ? 'failed' : 'ok') }, e.outcome)),
		el('td', { class: 'ev-cause' }, e.cause || ''));
}

function eventsTable(id, caption) {
	const tbody = el('tbody');
	const table = el('table', { class: 'grid events', id },
		el('caption', { class: 'sr-only' }, caption),
		el('thead', {}, el('tr', {}, HEADERS.map((h) => el('th', { scope: 'col' }, h)))), tbody);
	return { wrap: el('div', { class: 'table-wrap' }, table), tbody };
}

// The pane under every page; returns { destroy() }.
export function eventsPane(container) {
	let stopped = false, timer = null;
	const { wrap, tbody } = eventsTable('events-pane-table', 'Recent events');
	const note = el('p', { class: 'muted ev-note' });
	const body = el('div', { class: 'events-body', id: 'events-pane-body' }, wrap, note);
	const toggle = el('button', { type: 'button', class: 'btn small', 'aria-controls': body.id });
	const pane = el('section', { class: 'events-pane', id: 'events-pane', 'aria-labelledby': 'events-pane-title' },
		el('div', { class: 'events-head' }, el('h2', { id: 'events-pane-title' }, 'Events'),
			el('a', { href: '#/events' }, 'All events'), el('span', { class: 'spacer' }), toggle),
		body);
	function setHidden(hidden) {
		body.hidden = hidden;
		toggle.textContent = hidden ? 'Show events' : 'Hide events';
		toggle.setAttribute('aria-expanded', String(!hidden));
		localStorage.setItem(PANE_KEY, hidden ? '1' : '');
		if (!hidden) refresh();
	}
	toggle.addEventListener('click', () => setHidden(!body.hidden));
	container.append(pane);
	async function refresh() {
		if (body.hidden) return;
		try {
			const page = await apiPage('/v1/events?limit=' + PANE_ROWS);
			if (stopped) return;
			tbody.replaceChildren(...page.items.map(eventRow));
			note.textContent = page.items.length ? '' : 'No events yet.';
			pane.dataset.loaded = 'true';
		} catch (e) {
			if (!stopped) note.textContent = 'Cannot load events: ' + e.message;
		}
	}
	async function loop() {
		await refresh();
		if (!stopped) timer = setTimeout(loop, POLL_MS);
	}
	setHidden(localStorage.getItem(PANE_KEY) === '1');
	loop();
	return { destroy() { stopped = true; clearTimeout(timer); } };
}

// The Events page: filters, newest first, "Older events" follows the cursor.
export function eventsPage(main) {
	let stopped = false, timer = null, cursor = null, extra = [];
	const { wrap, tbody } = eventsTable('events', 'Events');
	const type = el('select', { id: 'ev-type' }, ['', 'vm', 'backend', 'host', 'user'].map((v) =>
		el('option', { value: v }, v || 'any')));
	const outcome = el('select', { id: 'ev-outcome' }, ['', 'ok', 'failed'].map((v) =>
		el('option', { value: v }, v || 'any')));
	const action = el('input', { id: 'ev-action', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. vm.* or backend.failed' });
	const more = el('button', { type: 'button', class: 'btn', hidden: true, onclick: older }, 'Older events');
	const note = el('p', { class: 'muted', 'aria-live': 'polite' });
	const filters = el('form', { class: 'ev-filters', onsubmit: (e) => { e.preventDefault(); reset(); } },
		el('div', { class: 'field' }, el('label', { for: type.id }, 'Object type'), type),
		el('div', { class: 'field' }, el('label', { for: action.id }, 'Action'), action),
		el('div', { class: 'field' }, el('label', { for: outcome.id }, 'Outcome'), outcome),
		el('button', { type: 'submit', class: 'btn' }, 'Filter'));
	type.addEventListener('change', () => reset());
	outcome.addEventListener('change', () => reset());
	main.append(el('div', { class: 'page-head' }, el('h1', {}, 'Events')),
		el('p', { class: 'muted' }, 'What happened to VMs, hosts, storage backends and sign-ins, newest first.'),
		filters, wrap, more, note);

	function query(before) {
		const q = new URLSearchParams({ limit: '50' });
		if (type.value) q.set('object_type', type.value);
		if (outcome.value) q.set('outcome', outcome.value);
		if (action.value.trim()) q.set('action', action.value.trim());
		if (before) q.set('before', before);
		return '/v1/events?' + q;
	}
	async function refresh() {
		if (extra.length) return; // older pages shown: keep the view still
		try {
			const page = await apiPage(query());
			if (stopped) return;
			tbody.replaceChildren(...page.items.map(eventRow));
			cursor = page.next;
			more.hidden = !cursor;
			note.textContent = page.total != null ? `${page.total} event${page.total === 1 ? '' : 's'}.` : '';
			main.dataset.loaded = 'true';
		} catch (e) {
			if (!stopped) note.textContent = 'Cannot load events: ' + e.message;
		}
	}
	async function older() {
		if (!cursor) return;
		try {
			const page = await apiPage(query(cursor));
			extra = extra.concat(page.items);
			cursor = page.next;
			more.hidden = !cursor;
			tbody.append(...page.items.map(eventRow));
		} catch (e) { note.textContent = 'Cannot load events: ' + e.message; }
	}
	function reset() { extra = []; cursor = null; refresh(); }
	async function loop() {
		await refresh();
		if (!stopped) timer = setTimeout(loop, POLL_MS);
	}
	loop();
	return { destroy() { stopped = true; clearTimeout(timer); } };
}
