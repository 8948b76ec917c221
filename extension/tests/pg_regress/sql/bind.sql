-- Same-browser binding: a bound link works only with the bind value of the browser that asked
-- for it; elsewhere it is `unbound` and consumes nothing, while its typed code still works.
SELECT linktoken.define_purpose('bd_login', '15 minutes', code_digits => 6, bind_browser => true);
SELECT bind_browser FROM linktoken.purposes WHERE name = 'bd_login';
\set bind 'b1nd-value-from-the-asking-browser'
SELECT linktoken.issue('bd_login', 'bd:1', bind => :'bind') AS tok \gset
-- only the hash of the bind value is stored
SELECT bind_hash = sha256(convert_to(:'bind', 'UTF8')) AS hashed FROM linktoken.tokens WHERE purpose = 'bd_login';
-- without the value, or with another one: unbound, nothing revealed, nothing consumed
SELECT * FROM linktoken.peek(:'tok', 'bd_login');
SELECT * FROM linktoken.peek(:'tok', 'bd_login', 'another-browser-value-0000');
SELECT * FROM linktoken.redeem(:'tok', 'bd_login');
SELECT status, purpose FROM linktoken.gateway_peek(:'tok');
SELECT status, purpose FROM linktoken.gateway_redeem(:'tok', '{"confirm": "yes"}');
SELECT use_count FROM linktoken.tokens WHERE purpose = 'bd_login' AND subject = 'bd:1';
-- with it: ok, once
SELECT status, subject FROM linktoken.peek(:'tok', 'bd_login', :'bind');
SELECT status, purpose FROM linktoken.gateway_redeem(:'tok', '{"confirm": "yes"}', :'bind');
SELECT status FROM linktoken.redeem(:'tok', 'bd_login', NULL, :'bind');

-- the typed code needs no binding (it is the way across devices)
SELECT token, code FROM linktoken.issue_with_code('bd_login', 'bd:2', bind => :'bind') \gset
SELECT status FROM linktoken.peek(:'token', 'bd_login') AS link_elsewhere;
SELECT status, attempts_left FROM linktoken.redeem_code('bd_login', 'bd:2', :'code');
SELECT status FROM linktoken.peek(:'token', 'bd_login', :'bind') AS link_afterwards;

-- a bound purpose needs the value at issue; values are checked; unbound purposes ignore it
SELECT try($$SELECT linktoken.issue('bd_login', 'bd:3')$$);
SELECT try($$SELECT linktoken.issue('bd_login', 'bd:3', bind => 'short')$$);
SELECT try($$SELECT linktoken.issue('bd_login', 'bd:3', bind => 'has spaces in it, not allowed')$$);
SELECT linktoken.define_purpose('bd_plain', '15 minutes');
SELECT linktoken.issue('bd_plain', 'bd:4', bind => :'bind') AS plain \gset
SELECT bind_hash IS NULL AS not_stored FROM linktoken.tokens WHERE purpose = 'bd_plain';
SELECT status FROM linktoken.peek(:'plain', 'bd_plain');
