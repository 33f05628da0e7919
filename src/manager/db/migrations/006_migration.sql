-- nqrust manager schema, version 6: cold migration in flight.
-- Before the VM leaves its host, migrate_to names the target and
-- migrate_start whether it ran; both are cleared when it has arrived (or
-- stayed). A manager that dies in between finds them at start and the
-- recovery pass settles the VM on exactly one host.
ALTER TABLE vms ADD COLUMN migrate_to TEXT NOT NULL DEFAULT '';
ALTER TABLE vms ADD COLUMN migrate_start INTEGER NOT NULL DEFAULT 0;
