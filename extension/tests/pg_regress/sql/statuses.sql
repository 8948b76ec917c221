-- Every status, and malformed input as a status rather than an error.
SELECT linktoken.define_purpose('reset', '1 hour');
SELECT linktoken.define_purpose('login', '15 minutes');

-- invalid: issued for another purpose (and nothing is touched)
SELECT linktoken.issue('reset', 'u:1') AS tok \gset
SELECT * FROM linktoken.peek(:'tok', 'login');
SELECT * FROM linktoken.redeem(:'tok', 'login');
SELECT status FROM linktoken.peek(:'tok', 'reset');

-- expired: past expires_at, by peek and by redeem
SELECT linktoken.issue('reset', 'u:2', ttl => '50 milliseconds') AS exp \gset
SELECT pg_sleep(0.1);
SELECT * FROM linktoken.peek(:'exp', 'reset');
SELECT * FROM linktoken.redeem(:'exp', 'reset');
SELECT use_count FROM linktoken.tokens WHERE subject = 'u:2';

-- revoked: by revoke()
SELECT linktoken.issue('reset', 'u:3') AS rev \gset
SELECT linktoken.revoke(:'rev') AS revoked;
SELECT linktoken.revoke(:'rev') AS revoked_again;
SELECT * FROM linktoken.peek(:'rev', 'reset');
SELECT * FROM linktoken.redeem(:'rev', 'reset');
SELECT linktoken.revoke('not a token') AS revoke_garbage, linktoken.revoke(NULL) AS revoke_null;

-- revoked: by issuing again for the same subject (revoke_previous)
SELECT linktoken.issue('reset', 'u:4') AS first \gset
SELECT linktoken.issue('reset', 'u:4') AS second \gset
SELECT status FROM linktoken.peek(:'first', 'reset');
SELECT status FROM linktoken.peek(:'second', 'reset');
SELECT detail FROM linktoken.events WHERE event = 'revoked' AND subject = 'u:4';

-- without revoke_previous several tokens stay valid
SELECT linktoken.define_purpose('login', '15 minutes', revoke_previous => false);
SELECT linktoken.issue('login', 'u:5') AS l1 \gset
SELECT linktoken.issue('login', 'u:5') AS l2 \gset
SELECT (SELECT status FROM linktoken.peek(:'l1', 'login')) AS first,
       (SELECT status FROM linktoken.peek(:'l2', 'login')) AS second;

-- revoke_subject: "password changed, kill every outstanding link"
SELECT linktoken.issue('reset', 'u:6') AS r6 \gset
SELECT linktoken.issue('login', 'u:6') AS l6 \gset
SELECT linktoken.revoke_subject('u:6', 'login') AS revoked_login;
SELECT (SELECT status FROM linktoken.peek(:'r6', 'reset')) AS reset,
       (SELECT status FROM linktoken.peek(:'l6', 'login')) AS login;
SELECT linktoken.revoke_subject('u:6') AS revoked_all;
SELECT (SELECT status FROM linktoken.peek(:'r6', 'reset')) AS reset;
SELECT linktoken.revoke_subject('nobody') AS revoked_none;

-- Precedence: a used token that later expired still says "used"; revoked wins over both.
SELECT linktoken.issue('reset', 'u:7') AS r7 \gset
SELECT status FROM linktoken.redeem(:'r7', 'reset');
UPDATE linktoken.tokens SET expires_at = now() - interval '1 minute' WHERE subject = 'u:7';
SELECT status FROM linktoken.peek(:'r7', 'reset');
UPDATE linktoken.tokens SET revoked_at = now() WHERE subject = 'u:7';
SELECT status FROM linktoken.peek(:'r7', 'reset');

-- Malformed tokens are the status invalid, never an error, and touch no row.
SELECT linktoken.issue('reset', 'u:8') AS good \gset
CREATE TEMP TABLE bad(label text, t text);
INSERT INTO bad VALUES
    ('null', NULL),
    ('empty', ''),
    ('1 MB', repeat('a', 1024 * 1024)),
    ('1 MB with prefix', 'ltk_' || repeat('A', 1024 * 1024)),
    ('control chars', 'ltk_' || repeat(chr(1), 48)),
    ('non-ASCII', 'ltk_' || repeat('é', 48)),
    ('emoji', 'ltk_' || repeat('🔑', 12)),
    ('wrong prefix', 'xtk_' || substr(:'good', 5)),
    ('upper-case prefix', 'LTK_' || substr(:'good', 5)),
    ('truncated', left(:'good', 51)),
    ('extended', :'good' || 'A'),
    ('padding', left(:'good', 50) || '=='),
    ('sql', 'ltk_''; DELETE FROM linktoken.tokens; --'),
    ('whitespace', ' ' || :'good'),
    ('percent-encoded', replace(:'good', '_', '%5F')),
    ('checksum flipped', left(:'good', 51) || translate(right(:'good', 1), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'BCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_A')),
    ('one char changed', left(:'good', 10) || translate(substr(:'good', 11, 1), 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'BCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_A') || substr(:'good', 12));
SELECT label, (linktoken.peek(t, 'reset')).status AS peek, (linktoken.redeem(t, 'reset')).status AS redeem
FROM bad ORDER BY label;
SELECT status FROM linktoken.peek(:'good', 'reset');
SELECT count(*) AS rejected_events FROM linktoken.events
WHERE event = 'rejected' AND status = 'invalid' AND purpose = 'reset' AND token_hash IS NULL;
