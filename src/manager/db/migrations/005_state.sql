-- nqrust manager schema, version 5: VM state kept by the reconciler.
-- last_exit is how the VM's hypervisor process last ended, as its agent
-- reported it (JSON {code, signal, reason, requested, at}; '' unknown):
-- kept in the database so every manager shows it and it survives a
-- restart. Lists page by (created_at, name, id); events page newest first.

ALTER TABLE vms ADD COLUMN last_exit TEXT NOT NULL DEFAULT '';
CREATE INDEX vms_order ON vms (created_at, name, id);
CREATE INDEX vms_state ON vms (state);
CREATE INDEX events_order ON events (at_ms, id);
CREATE INDEX events_action ON events (action);
