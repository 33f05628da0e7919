// The public REST API (DESIGN.md §5), nothing else. The session is the
// HttpOnly cookie set by /v1/auth/login; writes carry X-CSRF-Token, which
// is kept in sessionStorage (per tab) and never the session token itself.

const CSRF_KEY = 'nqrust.csrf';
const USER_KEY = 'nqrust.user';
const ROLE_KEY = 'nqrust.role';

export class ApiError extends Error {
	constructor(status, body) {
		const e = (body && body.error) || {};
		super(e.message || `request failed (HTTP ${status})`);
		this.status = status;
		this.code = e.code || 'http_' + status;
		this.field = e.field || null;
		this.body = body;
	}
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// Told after every call whether the manager answered: fn(null) when it
// did, fn(error) when it could not be reached (the "manager down" banner).
let onConnection = () => {};
export function setConnectionHandler(fn) { onConnection = fn; }

export async function api(method, path, body) {
	return (await call(method, path, body)).data;
}

// GET a paged list (?limit=&offset=, total in X-Total-Count) page by page
// into one array, so nothing past the first page is silently left out.
export const PAGE_LIMIT = 500;
export async function apiAll(path) {
	const sep = path.includes('?') ? '&' : '?';
	const all = [];
	for (let page = 0; page < 1000; page++) {
		const r = await call('GET', `${path}${sep}limit=${PAGE_LIMIT}&offset=${all.length}`);
		const list = Array.isArray(r.data) ? r.data : [];
		all.push(...list);
		// With X-Total-Count, go on until it is reached (the manager may
		// cap the page below PAGE_LIMIT); without it, a short page ends.
		if (!list.length) break;
		if (r.total !== null ? all.length >= Number(r.total) : list.length < PAGE_LIMIT) break;
	}
	return all;
}

// One page of a cursor-paged list (GET /v1/events): the items, the number
// of matches (X-Total-Count) and the cursor of the next page (or null).
export async function apiPage(path) {
	const r = await call('GET', path);
	return { items: Array.isArray(r.data) ? r.data : [], total: r.total !== null ? Number(r.total) : null,
		next: r.next };
}

async function call(method, path, body) {
	const headers = { Accept: 'application/json' };
	const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	if (method !== 'GET') {
		const csrf = sessionStorage.getItem(CSRF_KEY);
		if (csrf) headers['X-CSRF-Token'] = csrf;
	}
	let resp;
	try {
		resp = await fetch(path, init);
	} catch (e) {
		const err = new ApiError(0, { error: { code: 'network_error',
			message: 'cannot reach the manager: ' + e.message } });
		onConnection(err);
		throw err;
	}
	onConnection(null);
	const text = await resp.text();
	let data = null;
	if (text) {
		try { data = JSON.parse(text); } catch { data = null; }
	}
	if (!resp.ok) {
		const err = new ApiError(resp.status, data);
		if ((resp.status === 401 || err.code === 'csrf_required') && path !== '/v1/auth/login')
			onUnauthorized(err);
		throw err;
	}
	return { data, total: resp.headers.get('X-Total-Count'), next: resp.headers.get('X-Next-Cursor') };
}

export async function login(username, password) {
	const r = await api('POST', '/v1/auth/login', { username, password });
	sessionStorage.setItem(CSRF_KEY, r.csrf_token);
	sessionStorage.setItem(USER_KEY, r.username || username);
	sessionStorage.setItem(ROLE_KEY, r.role || 'admin');
	return r.username || username;
}

// Who the session belongs to, from the manager (a reload keeps no state
// the manager did not confirm): { username, role }.
export async function whoami() {
	const r = await api('GET', '/v1/auth/whoami');
	sessionStorage.setItem(USER_KEY, r.username);
	sessionStorage.setItem(ROLE_KEY, r.role);
	return r;
}

export async function logout() {
	try { await api('POST', '/v1/auth/logout'); } finally {
		sessionStorage.removeItem(CSRF_KEY);
		sessionStorage.removeItem(USER_KEY);
		sessionStorage.removeItem(ROLE_KEY);
	}
}

export function haveSession() { return !!sessionStorage.getItem(CSRF_KEY); }
export function sessionUser() { return sessionStorage.getItem(USER_KEY); }
// 'admin' or 'viewer'; a viewer's page hides what it may not do (the
// manager refuses it anyway: routes_auth.c).
export function sessionRole() { return sessionStorage.getItem(ROLE_KEY) || 'admin'; }
export function isViewer() { return sessionRole() === 'viewer'; }
