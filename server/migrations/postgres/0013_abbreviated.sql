-- Each version's abbreviated manifest (what installers read with
-- `Accept: application/vnd.npm.install-v1+json`), computed once at publish time so that the
-- abbreviated packument is written from stored text, never re-parsed. NULL for versions published
-- before this column: computed when read.
ALTER TABLE versions ADD COLUMN abbreviated TEXT;
