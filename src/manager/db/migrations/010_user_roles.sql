-- nqrust manager schema, version 10: user roles. 'admin' may do
-- everything; 'viewer' may read (GET) but every other request except
-- login and logout is refused with 403 forbidden (routes_auth.c). Users
-- that exist already stay administrators. builtin = 1 marks the first
-- administrator (auth_bootstrap): it can be neither removed nor demoted,
-- so the manager always keeps one administrator.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE users ADD COLUMN builtin INTEGER NOT NULL DEFAULT 0;
UPDATE users SET builtin = 1 WHERE username = 'admin';
