// nqrust web UI: login, the signed-in layout and a hash router.
import { login, logout, setUnauthorizedHandler, setConnectionHandler, haveSession, sessionRole, whoami } from './api.js';
import { el, loadRunbook, RUNBOOK_URL } from './ui.js';
import { storagePage } from './storage.js';
import { vmsPage, imagesPage } from './vms.js';
import { hostsPage } from './hosts.js';
import { eventsPage, eventsPane } from './events.js';
import { vmDetailPage } from './vm_detail.js';

const app = document.getElementById('app');
let current = null; // the mounted page: { destroy() }
let pane = null; // the events pane under it
let user = null;

const pages = {
	vms: { title: 'Virtual machines', nav: 'VMs', mount: vmsPage },
	storage: { title: 'Storage', nav: 'Storage', mount: storagePage },
	images: { title: 'Images', nav: 'Images', mount: imagesPage },
	hosts: { title: 'Hosts', nav: 'Hosts', mount: hostsPage },
	events: { title: 'Events', nav: 'Events', mount: eventsPage },
};

function unmount() {
	if (current && current.destroy) current.destroy();
	if (pane) pane.destroy();
	current = pane = null;
	document.querySelectorAll('dialog').forEach((d) => d.remove());
}

function showLogin(message) {
	unmount();
	user = null;
	delete document.body.dataset.role;
	const err = el('p', { id: 'login-error', class: 'field-error', role: 'alert' }, message || '');
	const u = el('input', { id: 'login-user', name: 'username', autocomplete: 'username',
		required: true, value: 'admin' });
	const p = el('input', { id: 'login-password', name: 'password', type: 'password',
		autocomplete: 'current-password', required: true, 'aria-describedby': 'login-error' });
	const btn = el('button', { type: 'submit', class: 'btn primary' }, 'Sign in');
	const form = el('form', { class: 'login-card', 'aria-labelledby': 'login-title', novalidate: true },
		el('h1', { id: 'login-title' }, 'nqrust'),
		el('p', { class: 'muted' }, 'Sign in to manage VMs and storage.'),
		el('div', { class: 'field' }, el('label', { for: 'login-user' }, 'Username'), u),
		el('div', { class: 'field' }, el('label', { for: 'login-password' }, 'Password'), p),
		err, btn);
	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		err.textContent = '';
		if (!u.value || !p.value) {
			err.textContent = 'Enter a username and a password.';
			(u.value ? p : u).focus();
			return;
		}
		btn.disabled = true;
		try {
			user = await login(u.value, p.value);
			p.value = '';
			showRole();
			route();
		} catch (ex) {
			p.value = '';
			err.textContent = ex.message;
			p.focus();
		} finally {
			btn.disabled = false;
		}
	});
	app.replaceChildren(el('main', { id: 'main', class: 'login-wrap' }, form));
	(u.value ? p : u).focus();
}

// A viewer's pages hide the controls that change something (.admin-only,
// app.css); the manager refuses a viewer's changes whatever the page shows.
function showRole() {
	document.body.dataset.role = sessionRole();
}

function layout(active) {
	const nav = el('nav', { 'aria-label': 'Main' },
		el('ul', {}, Object.entries(pages).map(([key, pg]) =>
			el('li', {}, el('a', { href: '#/' + key, 'aria-current': key === active ? 'page' : null,
				class: key === active ? 'active' : '' }, pg.nav)))));
	const out = el('button', { type: 'button', class: 'btn ghost', onclick: async () => {
		await logout().catch(() => {});
		location.hash = '#/storage';
		showLogin('Signed out.');
	} }, 'Sign out');
	const main = el('main', { id: 'main', tabindex: '-1' });
	const bottom = el('div', { class: 'bottom' });
	// Sign out sits in the header's first row with the brand; the nav wraps
	// below them on a narrow screen instead of pushing Sign out away.
	app.replaceChildren(
		el('header', { class: 'topbar' }, el('a', { class: 'brand', href: '#/vms' }, 'nqrust'), nav,
			el('span', { class: 'spacer' }),
			el('span', { class: 'muted user', id: 'signed-in' }, user ? 'Signed in as ' + user : '',
				sessionRole() === 'viewer' ? el('span', { class: 'badge viewer', title: 'This account may look but not change anything' }, 'read-only') : null),
			out),
		main, bottom);
	if (active !== 'events') pane = eventsPane(bottom); // the page shows them already
	return main;
}

async function runbookPage(main, code) {
	const rb = await loadRunbook();
	const sections = Object.entries(rb);
	main.append(el('h1', {}, 'Troubleshooting SMB backends'),
		el('p', {}, 'Full text: ', el('a', { href: RUNBOOK_URL }, 'docs/troubleshooting-smb.md')));
	for (const [c, e] of sections) {
		const s = el('section', { class: 'card runbook' + (c === code ? ' highlight' : ''), id: 'rb-' + c },
			el('h2', {}, el('code', {}, c)),
			el('p', {}, el('strong', {}, 'Cause: '), e.cause || ''),
			el('p', {}, el('strong', {}, 'How to confirm: '), e.confirm || ''),
			el('p', {}, el('strong', {}, 'How to fix: '), e.fix || ''));
		main.append(s);
	}
	const target = code && document.getElementById('rb-' + code);
	if (target) target.scrollIntoView();
	return {};
}

async function route() {
	const h = location.hash.replace(/^#\/?/, '');
	const [key, arg] = h.split('/');
	if (!user && !haveSession()) return showLogin();
	unmount();
	if (key === 'runbook') {
		const main = layout(null);
		document.title = 'Troubleshooting — nqrust';
		current = await runbookPage(main, arg);
		return;
	}
	if (key === 'vms' && arg) {
		current = vmDetailPage(layout('vms'), decodeURIComponent(arg));
		return;
	}
	const name = pages[key] ? key : 'storage';
	if (!pages[key]) { history.replaceState(null, '', '#/storage'); }
	const main = layout(name);
	document.title = pages[name].title + ' — nqrust';
	current = pages[name].mount(main);
}

setUnauthorizedHandler((err) => {
	if (err.status === 401 || err.code === 'csrf_required') showLogin('Your session has ended; sign in again.');
});
window.addEventListener('hashchange', route);

// "Manager down": a clear banner over every page while the manager cannot
// be reached, gone at the next answer.
setConnectionHandler((err) => {
	const b = document.getElementById('conn-banner');
	if (!b) return;
	b.hidden = !err;
	if (err) b.querySelector('.banner-text').textContent =
		'The manager is not answering (' + err.message + '). Lists on this page are not current; retrying…';
});

// A session cookie may still be valid (reload): probe it once.
(async () => {
	if (haveSession()) {
		try {
			user = (await whoami()).username;
			showRole();
		} catch { return; /* the 401 handler shows the login form */ }
	}
	route();
})();
