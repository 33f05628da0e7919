-- nqrust manager schema, version 7: which boot files each host has.
-- images holds the names of the regular files in the host's image dir
-- (base images, kernels, initrds) as its agent reported them in GET
-- /v1/host, joined by '\n' (names are [A-Za-z0-9._-], so they cannot hold
-- one). NULL: the agent has not reported any list yet (an older agent, or
-- a host not heard from since): placement does not check images there.
-- '' is a known empty image dir.
ALTER TABLE hosts ADD COLUMN images TEXT;
