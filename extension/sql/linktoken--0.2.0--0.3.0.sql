-- linktoken 0.2.0 -> 0.3.0: issue_batch(purpose, subjects text[], payload, ttl), many tokens of
-- one purpose in one set-based statement. (0.3.0 also runs its hot statements through kept
-- plans and folds the purpose lookup into issue's INSERT and redeem's UPDATE: no SQL objects.)
-- Released scripts are frozen.

CREATE FUNCTION @extschema@."issue_batch"(
	"purpose" TEXT, /* Option < & str > */
	"subjects" TEXT[], /* :: std :: option :: Option < Array < '_, & str > > */
	"payload" jsonb DEFAULT '{}', /* Option < RawJsonb > */
	"ttl" interval DEFAULT NULL /* Option < Interval > */
) RETURNS TABLE (
	"subject" TEXT,  /* String */
	"token" TEXT  /* String */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO @extschema@, pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_batch_wrapper';

REVOKE ALL ON FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) TO linktoken_issuer;
COMMENT ON FUNCTION @extschema@.issue_batch(text, text[], jsonb, interval) IS
'Issues one token per subject for a purpose in one set-based statement and returns (subject, token) in the order given: for large batches (invitations, newsletter unsubscribe links). Same checks, storage (hashes only) and ''issued'' events as issue(); payload and ttl apply to every token. Only for purposes without revoke_previous, min_interval and bind_browser (0A000 otherwise). Role linktoken_issuer.';
