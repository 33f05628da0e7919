-- nqrust manager schema, version 3: a volume's allocated_bytes may be
-- unknown (NULL): the agent cannot tell through the FUSE driver, and a
-- volume that is still being provisioned has no size yet. SQLite cannot
-- drop a NOT NULL constraint in place, so the table is rebuilt (nothing
-- references volumes).

CREATE TABLE volumes_new (
	id TEXT PRIMARY KEY,
	backend_id TEXT NOT NULL REFERENCES backends(id),
	vm_id TEXT REFERENCES vms(id),
	path TEXT NOT NULL,
	size_bytes BIGINT NOT NULL,
	allocated_bytes BIGINT,
	state TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
INSERT INTO volumes_new (id, backend_id, vm_id, path, size_bytes, allocated_bytes,
	state, created_at)
	SELECT id, backend_id, vm_id, path, size_bytes, allocated_bytes, state, created_at
	FROM volumes;
DROP TABLE volumes;
ALTER TABLE volumes_new RENAME TO volumes;
CREATE INDEX volumes_backend ON volumes (backend_id);
CREATE INDEX volumes_vm ON volumes (vm_id);
