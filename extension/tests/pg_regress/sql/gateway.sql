-- The gateway's entry points: the purpose comes from the token, the page from the purpose,
-- and the form is checked against the page before anything is consumed.
SELECT linktoken.define_purpose('gw_reset', '1 hour');
SELECT linktoken.define_purpose('gw_unsub', '1 year', max_uses => NULL, revoke_previous => false);

-- Pages: validated, normalised, per purpose.
SELECT linktoken.set_page('gw_reset', '{
  "title": "Choose a new password",
  "fields": [
    {"name": "password", "type": "password", "label": "New password", "required": true, "minlength": 12},
    {"name": "password2", "type": "password", "label": "Repeat the password", "required": true, "same_as": "password"}
  ],
  "success_url": "/signed-in"
}');
SELECT linktoken.set_page('gw_unsub', '{"title": "Unsubscribe", "one_click": true, "confirm_label": "Yes, unsubscribe me"}');
SELECT name, page FROM linktoken.purposes WHERE name LIKE 'gw\_%' ORDER BY name;
SELECT try($$SELECT linktoken.set_page('gw_reset', '{"success_url": "https://evil.example/"}')$$);
SELECT try($$SELECT linktoken.set_page('gw_reset', '{"fields": [{"name": "q", "type": "radio", "label": "Q"}]}')$$);
SELECT try($$SELECT linktoken.set_page('gw_reset', '{"titel": "typo"}')$$);
SELECT try($$SELECT linktoken.set_page('gw_reset', NULL)$$);
SELECT try($$SELECT linktoken.set_page('nope', '{}')$$);

-- gateway_peek: status, purpose and page for any purpose; nothing changes.
SELECT linktoken.issue('gw_reset', 'gw:1') AS reset \gset
SELECT status, purpose, page->>'title' AS title, uses_left FROM linktoken.gateway_peek(:'reset');
SELECT status, purpose, page FROM linktoken.gateway_peek('ltk_garbage');
SELECT status, purpose, page FROM linktoken.gateway_peek(NULL);

-- gateway_redeem: a form that falls short is an error naming the field; nothing is consumed.
SELECT try(format('SELECT linktoken.gateway_redeem(%L, %L)', :'reset', '{}'));
SELECT try(format('SELECT linktoken.gateway_redeem(%L, %L)', :'reset', '{"password": "short", "password2": "short"}'));
SELECT try(format('SELECT linktoken.gateway_redeem(%L, %L)', :'reset', '{"password": "correct horse battery", "password2": "other"}'));
SELECT try(format('SELECT linktoken.gateway_redeem(%L, NULL)', :'reset'));
SELECT status FROM linktoken.gateway_peek(:'reset');
SELECT status, purpose, result, page->>'success_url' AS success_url
FROM linktoken.gateway_redeem(:'reset', '{"password": "correct horse battery", "password2": "correct horse battery"}');
-- a used token reports its status even with an empty form
SELECT status, purpose FROM linktoken.gateway_redeem(:'reset', '{}');
SELECT status, purpose FROM linktoken.gateway_redeem('ltk_garbage', '{}');

-- Pages without a required field need the confirmation checkbox (a scanner's empty POST fails);
-- RFC 8058 one-click works only where the page allows it.
SELECT linktoken.issue('gw_unsub', 'list:1') AS unsub \gset
SELECT try(format('SELECT linktoken.gateway_redeem(%L, %L)', :'unsub', '{}'));
SELECT status FROM linktoken.gateway_redeem(:'unsub', '{"List-Unsubscribe": "One-Click"}');
SELECT status FROM linktoken.gateway_redeem(:'unsub', '{"List-Unsubscribe": "One-Click"}');
SELECT status FROM linktoken.gateway_redeem(:'unsub', '{"confirm": "yes"}');
SELECT linktoken.issue('gw_reset', 'gw:2') AS reset2 \gset
SELECT try(format('SELECT linktoken.gateway_redeem(%L, %L)', :'reset2', '{"List-Unsubscribe": "One-Click"}'));
SELECT status FROM linktoken.gateway_peek(:'reset2');

-- The audit log records gateway redemptions like any other.
SELECT event, status, purpose FROM linktoken.audit
WHERE event <> 'issued' AND (purpose LIKE 'gw\_%' OR (event = 'rejected' AND purpose IS NULL)) ORDER BY at, event;
SELECT event, count(*) FROM linktoken.audit WHERE purpose LIKE 'gw\_%' GROUP BY event ORDER BY event;
