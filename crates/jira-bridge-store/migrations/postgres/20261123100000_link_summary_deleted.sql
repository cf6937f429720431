-- A linked issue's summary as Jira last reported it, and when Jira reported the
-- issue deleted (the link is kept, marked).
ALTER TABLE links ADD COLUMN summary TEXT;
ALTER TABLE links ADD COLUMN issue_deleted_at TIMESTAMPTZ;
