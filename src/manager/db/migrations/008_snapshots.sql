-- nqrust manager schema, version 8: disk snapshots. A snapshot is a volume
-- (a file smb-<id>.raw / local-<id>.raw beside the VM's disk, on the same
-- backend) that belongs to no VM as its disk (vm_id NULL) but records the
-- VM it was taken of (snapshot_of) and its name, unique per VM. Being a
-- volume row, it counts in the backend's in-use check, and one left in
-- state 'provisioning' by a manager that died is settled by the recovery
-- pass like any other volume. A VM made from a snapshot records it in
-- source_snapshot_id: its provisioning copies that volume instead of
-- cloning its image.
ALTER TABLE volumes ADD COLUMN snapshot_of TEXT REFERENCES vms(id);
ALTER TABLE volumes ADD COLUMN name TEXT;
CREATE UNIQUE INDEX volumes_snapshot_name ON volumes (snapshot_of, name);
ALTER TABLE vms ADD COLUMN source_snapshot_id TEXT;
