-- API key roles (issue 8): admin, operator, trigger, read. Keys made before this are admin:
-- they could do everything, and an upgrade must not take anything away from them.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'operator', 'trigger', 'read'));
