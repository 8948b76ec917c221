-- After the upgrade: every token of states.sql keeps its state and redeems as it should, and the
-- audit log still answers everything it answered (who was issued what, when and from where; who
-- redeemed it, when and from where; every rejection and revocation), by token hash now. One
-- line per check: name|t (passed) or name|f.
\pset tuples_only on
\pset format unaligned
SELECT 'live token ok', status = 'ok' FROM linktoken.peek(:'t1', 'upg_one');
SELECT 'used token used', status = 'used' FROM linktoken.peek(:'t2', 'upg_one');
SELECT 'expired token expired', status = 'expired' FROM linktoken.peek(:'t3', 'upg_one');
SELECT 'revoked token revoked', status = 'revoked' FROM linktoken.peek(:'t4', 'upg_one');
SELECT 'partly used token has 2 uses left', status = 'ok' AND uses_left = 2 FROM linktoken.peek(:'t5', 'upg_multi');
SELECT 'live token redeems', status = 'ok' FROM linktoken.redeem(:'t1', 'upg_one');
SELECT 'live token redeems once', status = 'used' FROM linktoken.redeem(:'t1', 'upg_one');
SELECT 'partly used token redeems', status = 'ok' FROM linktoken.redeem(:'t5', 'upg_multi');
SELECT 'every token issued once in the audit view',
       (SELECT count(*) FROM linktoken.audit WHERE event = 'issued' AND purpose IN ('upg_one', 'upg_multi')) = 6
       AND (SELECT count(DISTINCT subject) FROM linktoken.audit WHERE event = 'issued' AND purpose IN ('upg_one', 'upg_multi')) = 6;
SELECT 'where the issue came from moved into the row',
       issued_ip = '198.51.100.1' AND issued_ua = 'app/1'
FROM linktoken.tokens WHERE token_hash = sha256(convert_to(:'t1', 'UTF8'));
SELECT 'the earlier redemption names its token by hash, with where it came from',
       count(*) = 1 FROM linktoken.events
WHERE event = 'redeemed' AND token_hash = sha256(convert_to(:'t2', 'UTF8')) AND client_ip = '198.51.100.2' AND user_agent = 'browser/2';
SELECT 'a token used before the upgrade has its redemption once in the audit view (from its event, not its row)',
       count(*) = 1 FROM linktoken.audit
WHERE event = 'redeemed' AND token_hash = sha256(convert_to(:'t2', 'UTF8'));
SELECT 'the earlier rejection and revocation name their tokens',
       (SELECT count(*) FROM linktoken.events WHERE event = 'rejected' AND status = 'used'
          AND token_hash = sha256(convert_to(:'t2', 'UTF8')) AND client_ip = '198.51.100.3') = 1
       AND (SELECT count(*) FROM linktoken.events WHERE event = 'revoked'
          AND token_hash = sha256(convert_to(:'t4', 'UTF8')) AND detail->>'reason' = 'revoke') = 1;
SELECT 'a purged token''s events keep its old id',
       count(*) = 2 FROM linktoken.events WHERE subject = 's:gone' AND token_hash IS NULL AND detail->>'token_id' = '999';
SELECT 'the rejection of an unknown token is kept', count(*) = 1 FROM linktoken.events
WHERE event = 'rejected' AND status = 'invalid' AND client_ip = '198.51.100.4';
SELECT 'the new redemptions are in the log by hash (beside the partly used token''s earlier one)',
       count(*) = 3 FROM linktoken.audit WHERE event = 'redeemed'
         AND token_hash IN (sha256(convert_to(:'t1', 'UTF8')), sha256(convert_to(:'t5', 'UTF8')));
SELECT 'purge writes the issue of the tokens it deletes',
       linktoken.purge() >= 0 AND (SELECT count(*) FROM linktoken.events WHERE event = 'issued' AND subject = 's:gone') = 1;
