-- nqrust manager schema, version 2: VM lifecycle. Hosts describe what
-- their agent offers and when it last answered; a VM records its host,
-- the boot files picked from the image dir, and the cause of an error.

ALTER TABLE hosts ADD COLUMN backend_kinds TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN hypervisors TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;

ALTER TABLE vms ADD COLUMN host_id TEXT REFERENCES hosts(id);
ALTER TABLE vms ADD COLUMN kernel TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN initrd TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN error TEXT;

CREATE INDEX volumes_vm ON volumes (vm_id);
