-- nqrust manager schema, version 4: many hosts.
-- A host is an agent the manager reaches over its unix socket (the
-- built-in host "local") or over TLS. Its certificate is pinned by SHA-256
-- fingerprint; its bearer token is kept only sealed (AES-256-GCM under the
-- manager's key file, which is never in the database) in `secrets`.
-- A backend is attached per host (backend_hosts): status, cause and
-- capacity as that host sees them. A localfile backend belongs to one host.
-- A VM may ask for high availability (ha = 1).

ALTER TABLE hosts ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN fingerprint_source TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN cpus INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN memory_mib BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN memory_free_mib BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN lease_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN unreachable_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

CREATE TABLE secrets (
	id TEXT PRIMARY KEY,
	sealed TEXT NOT NULL,
	generation INTEGER NOT NULL DEFAULT 1,
	updated_at BIGINT NOT NULL
);

CREATE TABLE backend_hosts (
	backend_id TEXT NOT NULL REFERENCES backends(id) ON DELETE CASCADE,
	host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
	status TEXT NOT NULL,
	error_code TEXT NOT NULL DEFAULT '',
	error_message TEXT NOT NULL DEFAULT '',
	total_bytes BIGINT,
	used_bytes BIGINT,
	free_bytes BIGINT,
	secret_generation INTEGER NOT NULL DEFAULT 0,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (backend_id, host_id)
);
CREATE INDEX backend_hosts_host ON backend_hosts (host_id);

ALTER TABLE backends ADD COLUMN host_id TEXT NOT NULL DEFAULT '';

ALTER TABLE vms ADD COLUMN ha INTEGER NOT NULL DEFAULT 0;
ALTER TABLE vms ADD COLUMN state_changed_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX vms_host ON vms (host_id);
CREATE INDEX vms_name ON vms (name);

CREATE TABLE events (
	id TEXT PRIMARY KEY,
	at_ms BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	object_type TEXT NOT NULL,
	object_id TEXT NOT NULL,
	host_id TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL,
	cause TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_object ON events (object_type, object_id);
