-- What an approver is shown besides the intent (requester's address and client, and for a
-- publish what the tarball holds and changes), as JSON. Informational: never evidence.
ALTER TABLE approvals ADD COLUMN details TEXT;
