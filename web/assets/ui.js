// Small DOM helpers shared by the pages. Text always goes in through
// textContent (never innerHTML), so API data cannot inject markup.

export function el(tag, attrs, ...children) {
	const n = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k === 'class') n.className = v;
		else if (k === 'text') n.textContent = v;
		else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
		else if (k === 'dataset') Object.assign(n.dataset, v);
		else n.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children.flat(Infinity)) {
		if (c === null || c === undefined || c === false) continue;
		n.append(c instanceof Node ? c : document.createTextNode(String(c)));
	}
	return n;
}

export function fmtBytes(n) {
	if (n === null || n === undefined || isNaN(n)) return '—';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
	let i = 0, v = Number(n);
	while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
	return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
}

let uid = 0;
export function nextId(prefix) { return `${prefix}-${++uid}`; }

// ---- dialogs -------------------------------------------------------------
// A modal <dialog>: the rest of the page is inert, Tab / Shift+Tab cycle
// inside it, Escape cancels, and focus returns to where it was on close.
const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]),' +
	' select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function focusables(root) {
	return [...root.querySelectorAll(FOCUSABLE)].filter((n) => n.offsetParent !== null ||
		n === document.activeElement);
}

export function openDialog({ title, body, footer, onClose, wide, className }) {
	const titleId = nextId('dlg-title');
	const closeBtn = el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close',
		onclick: () => close() }, '×');
	const dlg = el('dialog', { class: 'dialog' + (wide ? ' wide' : '') + (className ? ' ' + className : ''),
		'aria-labelledby': titleId, 'aria-modal': 'true' },
	el('header', { class: 'dialog-head' }, el('h2', { id: titleId, text: title }), closeBtn),
	el('div', { class: 'dialog-body' }, body),
	footer ? el('footer', { class: 'dialog-foot' }, footer) : null);
	const opener = document.activeElement;
	let closed = false;
	function close(result) {
		if (closed) return;
		closed = true;
		dlg.close();
		dlg.remove();
		if (opener && opener.isConnected) opener.focus();
		if (onClose) onClose(result);
	}
	dlg.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
	dlg.addEventListener('keydown', (e) => {
		if (e.key !== 'Tab') return;
		const f = focusables(dlg);
		if (!f.length) return;
		const first = f[0], last = f[f.length - 1];
		if (e.shiftKey && (document.activeElement === first || !dlg.contains(document.activeElement))) {
			e.preventDefault(); last.focus();
		} else if (!e.shiftKey && (document.activeElement === last || !dlg.contains(document.activeElement))) {
			e.preventDefault(); first.focus();
		}
	});
	document.body.append(dlg);
	dlg.showModal();
	const auto = dlg.querySelector('[autofocus]') || focusables(dlg.querySelector('.dialog-body'))[0] || closeBtn;
	auto.focus();
	return { dlg, close };
}

export function confirmDialog({ title, message, confirmText, danger }) {
	return new Promise((resolve) => {
		let result = false;
		const ok = el('button', { type: 'button', class: danger ? 'btn danger' : 'btn primary',
			onclick: () => { result = true; d.close(); } }, confirmText || 'OK');
		const cancel = el('button', { type: 'button', class: 'btn', autofocus: true,
			onclick: () => d.close() }, 'Cancel');
		const d = openDialog({ title, body: el('p', {}, message), footer: [cancel, ok],
			onClose: () => resolve(result) });
	});
}

// ---- toasts --------------------------------------------------------------
// A success fades after 6 s; a failure stays until it is dismissed (an
// operator who looked away must still see that a start failed).
export function toast(message, kind) {
	const box = document.getElementById('toasts');
	const failure = kind === 'error';
	const t = el('div', { class: 'toast ' + (kind || 'ok'), role: failure ? 'alert' : null },
		el('span', { class: 'toast-text' }, message));
	if (failure)
		t.append(el('button', { type: 'button', class: 'toast-dismiss', 'aria-label': 'Dismiss: ' + message,
			onclick: () => t.remove() }, 'Dismiss'));
	box.append(t);
	// At most three passing notes; failures are never dropped unseen.
	const notes = [...box.children].filter((n) => !n.classList.contains('error'));
	while (notes.length > 3) notes.shift().remove();
	if (!failure) setTimeout(() => t.remove(), 6000);
}

// ---- the SMB runbook (docs/troubleshooting-smb.md, served at /docs/) ---
// Parsed once: "## code" sections with **Cause:**, **Confirm:**, **Fix:**
// paragraphs. The UI shows Cause and Fix next to a failure.
export const RUNBOOK_URL = '/docs/troubleshooting-smb.md';
let runbookPromise = null;

function parseRunbook(text) {
	const out = {};
	for (const sec of text.split(/^## /m).slice(1)) {
		const nl = sec.indexOf('\n');
		const code = sec.slice(0, nl).trim();
		const entry = {};
		for (const m of sec.slice(nl).matchAll(/\*\*(Cause|Confirm|Fix):\*\*([\s\S]*?)(?=\n\*\*(?:Cause|Confirm|Fix):\*\*|$)/g))
			entry[m[1].toLowerCase()] = m[2].replace(/\s+/g, ' ').replace(/`/g, '').trim();
		out[code] = entry;
	}
	return out;
}

export function loadRunbook() {
	if (!runbookPromise)
		runbookPromise = fetch(RUNBOOK_URL, { credentials: 'same-origin' })
			.then((r) => (r.ok ? r.text() : ''))
			.then(parseRunbook)
			.catch(() => ({}));
	return runbookPromise;
}


// A box explaining an error: the API's message, then (for a code in the
// runbook) its cause and what to do, with a link to the full runbook.
export async function errorBox(err) {
	const rb = await loadRunbook();
	const entry = rb[err.code];
	const box = el('div', { class: 'alert error', role: 'alert', dataset: { code: err.code } },
		el('p', { class: 'alert-title' }, el('strong', {}, err.message)));
	if (entry && entry.cause) {
		box.append(el('p', {}, el('strong', {}, 'Cause: '), entry.cause));
		if (entry.fix) box.append(el('p', { class: 'fix' }, el('strong', {}, 'What to do: '), entry.fix));
		// A new tab: following the link must not throw away a half-filled form.
		box.append(el('p', {}, el('a', { href: '/#/runbook/' + err.code, target: '_blank', rel: 'noopener' },
			'Troubleshooting guide: ' + err.code), ' · ',
		el('a', { href: RUNBOOK_URL, target: '_blank', rel: 'noopener' }, 'runbook source')));
	} else if (err.code) {
		box.append(el('p', { class: 'muted' }, 'Error code: ' + err.code));
	}
	return box;
}

// Wrap an async refresh so calls never overlap: a call made while one runs
// schedules exactly one more run after it (two overlapping list renders
// would each add the same new row).
export function serial(fn) {
	let running = null, again = false;
	const run = async () => {
		if (running) { again = true; return running; }
		running = (async () => {
			try { do { again = false; await fn(); } while (again); } finally { running = null; }
		})();
		return running;
	};
	return run;
}
