// Shared setup of the browser tests: a throwaway smbd + agent + manager
// (stack.py, the integration fixtures) and headless Debian Chromium driven
// by playwright-core. Loopback only; nothing is downloaded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const SHOTS = path.join(process.env.NQRUST_BUILD_DIR || path.join(REPO, 'build'), 'screenshots');
const CHROMIUM = process.env.NQRUST_CHROMIUM || '/usr/bin/chromium';
const PYTHON = process.env.PYTHON || '/usr/bin/python3';

// opts.secondAgent: also a second agent on TCP+TLS (stack.py --second-agent);
// opts.qemu: the agent runs real QEMU guests (stack.py --qemu).
export async function startStack(opts = {}) {
	const args = [path.join(HERE, 'stack.py')].concat(opts.secondAgent ? ['--second-agent'] : [],
		opts.qemu ? ['--qemu'] : []);
	const proc = spawn(PYTHON, args, {
		cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'],
		env: { ...process.env, NQRUST_BUILD_DIR: process.env.NQRUST_BUILD_DIR || path.join(REPO, 'build') },
	});
	const rl = readline.createInterface({ input: proc.stdout });
	const info = await new Promise((resolve, reject) => {
		proc.once('exit', (code) => reject(new Error(`stack.py exited ${code} before it was ready`)));
		rl.once('line', (line) => resolve(JSON.parse(line)));
	});
	proc.removeAllListeners('exit');
	const exited = new Promise((r) => proc.once('exit', r));
	info.stop = async () => {
		proc.stdin.end(); // stack.py cleans up when its stdin closes
		await exited;
	};
	return info;
}

export async function launchBrowser() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nqrust-chromium-'));
	const ctx = await chromium.launchPersistentContext(dir, {
		executablePath: CHROMIUM,
		headless: true,
		viewport: { width: 1366, height: 768 },
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
	});
	ctx.setDefaultTimeout(Number(process.env.NQRUST_UI_TIMEOUT_MS) || 30_000);
	return {
		ctx,
		async close() {
			await ctx.close();
			fs.rmSync(dir, { recursive: true, force: true });
		},
	};
}

// A bearer-token client of the public API, for setup the UI does not do.
export async function apiClient(url, user, password) {
	const r = await fetch(url + '/v1/auth/login', { method: 'POST',
		headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: user, password }) });
	if (r.status !== 200) throw new Error('API login failed: ' + r.status);
	const { token } = await r.json();
	return async (method, p, body) => {
		const resp = await fetch(url + p, { method, headers: { Authorization: 'Bearer ' + token,
			...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
		const text = await resp.text();
		return { status: resp.status, body: text ? JSON.parse(text) : null };
	};
}

export async function screenshot(page, name) {
	fs.mkdirSync(SHOTS, { recursive: true });
	const file = path.join(SHOTS, name + '.png');
	await page.screenshot({ path: file });
	return file;
}

// GET a path byte for byte (fetch() would normalise "..").
export function rawGet(url, p) {
	const u = new URL(url);
	return new Promise((resolve, reject) => {
		const req = http.request({ host: u.hostname, port: u.port, path: p, method: 'GET' }, (res) => {
			res.resume();
			res.on('end', () => resolve({ status: res.statusCode, headers: res.headers }));
		});
		req.on('error', reject);
		req.end();
	});
}
