// The VM detail page (#/vms/<id>): its configuration, host, backend, disk
// on the host, state history, the last exit in words, and the serial
// console (xterm.js, served by the manager from web/node_modules) over the
// manager's WebSocket /v1/vms/<id>/console/ws: output live, keystrokes to
// the guest's serial port (a viewer's are refused by the manager).
import { api, isViewer } from './api.js';
import { el, fmtBytes } from './ui.js';

const REFRESH_MS = 3000;
const RECONNECT_MS = 3000;

function when(ms) {
	return ms ? new Date(ms).toLocaleString() : '—';
}

// xterm.js once per page load: a <script> and its stylesheet, same origin.
let xtermLoad = null;
function loadXterm() {
	if (window.Terminal) return Promise.resolve(window.Terminal);
	if (!xtermLoad) {
		xtermLoad = new Promise((resolve, reject) => {
			document.head.append(el('link', { rel: 'stylesheet', href: '/vendor/xterm.css' }));
			const s = el('script', { src: '/vendor/xterm.js' });
			s.addEventListener('load', () => (window.Terminal ? resolve(window.Terminal) : reject(new Error('xterm.js did not load'))));
			s.addEventListener('error', () => reject(new Error('xterm.js is not installed (make web-deps)')));
			document.head.append(s);
		});
		xtermLoad.catch(() => { xtermLoad = null; });
	}
	return xtermLoad;
}

function facts(vm) {
	const d = vm.disk || {};
	const rows = [
		['State', vm.state],
		['vCPUs', vm.vcpus],
		['Memory', vm.memory_mib + ' MiB'],
		['Image', vm.image_id],
		['Host', vm.host ? `${vm.host.name || vm.host.id} (${vm.host.id})` : 'not placed yet'],
		['Storage backend', vm.backend ? `${vm.backend.name} (${vm.backend.kind})` : vm.storage_backend_id],
		['Disk on the host', d.path || '—'],
		['Disk size', d.size_bytes != null ? `${fmtBytes(d.size_bytes)} (${fmtBytes(d.allocated_bytes)} allocated)` : '—'],
		['Created', when(vm.created_at * 1000)],
	];
	if (vm.error) rows.push(['Error', vm.error]);
	return rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { dataset: { fact: k } }, String(v ?? '—'))]);
}

function history(vm) {
	const h = vm.state_history || [];
	if (!h.length) return [el('li', { class: 'muted' }, 'No recorded transitions yet.')];
	return h.map((e) => el('li', {},
		el('time', {}, when(e.at_ms)), ' ', el('strong', {}, e.action), ' ',
		e.outcome && e.outcome !== 'ok' ? el('span', { class: 'badge warn' }, e.outcome) : null,
		e.cause ? el('span', { class: 'muted' }, ' — ' + e.cause) : null));
}

function lastExit(vm) {
	const x = vm.last_exit;
	if (!x) return 'No exit recorded.';
	return `Last exit: ${x.reason}` + (x.at ? ` (${when(x.at * 1000)})` : '');
}

export function vmDetailPage(main, id) {
	let destroyed = false, ws = null, term = null, timer = null, retry = null;
	const title = el('h1', { id: 'vm-title' }, 'VM');
	const exitLine = el('p', { id: 'vm-last-exit', class: 'last-exit', role: 'status' });
	const dl = el('dl', { id: 'vm-facts', class: 'facts' });
	const hist = el('ol', { id: 'vm-history', class: 'history' });
	const conState = el('p', { id: 'vm-console-state', class: 'muted', role: 'status' }, 'Connecting…');
	const viewer = isViewer();
	const conBox = el('div', { id: 'vm-console', class: 'console', role: 'region',
		'aria-label': viewer ? 'Serial console (read-only: your account is a viewer)'
			: 'Serial console: click and type to send keys to the guest' });
	main.append(el('p', {}, el('a', { href: '#/vms' }, '← Virtual machines')), title, exitLine,
		el('section', { class: 'card' }, el('h2', {}, 'Console'), conState, conBox),
		el('section', { class: 'card' }, el('h2', {}, 'Details'), dl),
		el('section', { class: 'card' }, el('h2', {}, 'State history'), hist));

	async function refresh() {
		try {
			const vm = await api('GET', '/v1/vms/' + encodeURIComponent(id));
			if (destroyed) return;
			title.textContent = vm.name;
			document.title = vm.name + ' — nqrust';
			exitLine.textContent = lastExit(vm);
			dl.replaceChildren(...facts(vm));
			hist.replaceChildren(...history(vm));
		} catch (ex) {
			if (!destroyed) exitLine.textContent = ex.message;
		}
	}

	function connect() {
		if (destroyed) return;
		const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
		ws = new WebSocket(`${proto}//${location.host}/v1/vms/${encodeURIComponent(id)}/console/ws`);
		ws.binaryType = 'arraybuffer';
		ws.onopen = () => {
			conState.textContent = viewer ? 'Connected: output is live (read-only: your account is a viewer).'
				: 'Connected: output is live; click the console and type.';
		};
		ws.onmessage = (ev) => {
			if (typeof ev.data === 'string') {
				try { conState.textContent = JSON.parse(ev.data).message; } catch { /* not ours */ }
			} else if (term) {
				term.write(new Uint8Array(ev.data));
			}
		};
		ws.onclose = () => {
			if (destroyed) return;
			conState.textContent = 'Console disconnected; reconnecting…';
			retry = setTimeout(() => { term && term.reset(); connect(); }, RECONNECT_MS);
		};
	}

	loadXterm().then((Terminal) => {
		if (destroyed) return;
		term = new Terminal({ rows: 30, cols: 100, convertEol: true, scrollback: 5000, disableStdin: viewer,
			fontFamily: 'ui-monospace, monospace', fontSize: 13 });
		term.open(conBox);
		conBox.nqTerm = term; // for tests: the buffer as text
		term.onData((d) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(d); });
		connect();
	}).catch((ex) => { conState.textContent = ex.message; });

	refresh();
	timer = setInterval(refresh, REFRESH_MS);
	return {
		destroy() {
			destroyed = true;
			clearInterval(timer);
			clearTimeout(retry);
			if (ws) ws.close();
			if (term) term.dispose();
		},
	};
}
