-- nqrust manager schema, version 1. Portable between SQLite and PostgreSQL:
-- TEXT, INTEGER and BIGINT only; flags are 0/1 integers; times are Unix
-- seconds. No password is ever stored here: users hold argon2id hashes,
-- tokens are stored as SHA-256 hashes.

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	username TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token_hash TEXT NOT NULL UNIQUE,
	csrf_hash TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at);

CREATE TABLE hosts (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	agent_url TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE backends (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	config TEXT NOT NULL,
	has_password INTEGER NOT NULL DEFAULT 0,
	is_default INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
-- At most one default backend, enforced by the database itself.
CREATE UNIQUE INDEX backends_one_default ON backends (is_default) WHERE is_default = 1;

CREATE TABLE images (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	size_bytes BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE vms (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	vcpus INTEGER NOT NULL,
	memory_mib INTEGER NOT NULL,
	image_id TEXT REFERENCES images(id),
	backend_id TEXT REFERENCES backends(id),
	state TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE volumes (
	id TEXT PRIMARY KEY,
	backend_id TEXT NOT NULL REFERENCES backends(id),
	vm_id TEXT REFERENCES vms(id),
	path TEXT NOT NULL,
	size_bytes BIGINT NOT NULL,
	allocated_bytes BIGINT NOT NULL DEFAULT 0,
	state TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX volumes_backend ON volumes (backend_id);
