#!/usr/bin/env bash
# `make demo`: installs what is missing, builds and installs the extension, starts a throwaway
# PostgreSQL 15 cluster under .pgdata/demo (as the postgres user), walks through
# issue -> peek -> redeem -> redeem again in psql, then starts the gateway with the example app
# (sql/examples/flows.sql) and prints one clickable link per flow, then the request forms
# ("enter your email"), whose mails the mailer delivers to a local SMTP sink that writes them
# under .pgdata/demo-mail/.
# Re-running is idempotent (the demo database and the gateway are recreated). Both keep running
# so you can click the links; `make clean` stops them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
PGBIN=/usr/lib/postgresql/15/bin
CLUSTER=$ROOT/.pgdata/demo
GATEWAY_DIR=$ROOT/.pgdata/demo-gateway
LISTEN=${LINKTOKEN_DEMO_LISTEN:-127.0.0.1:8080}

scripts/install-deps.sh
scripts/install-extension.sh
cargo build -q -p linktoken-gateway
cargo build -q -p linktoken-integration --bin smtp-sink
export PGOPTIONS="-c client_min_messages=warning"
eval "$(scripts/pg-cluster.sh start "$CLUSTER" | sed 's/^/export /')"
scripts/demo-gateway.sh stop "$GATEWAY_DIR"
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d postgres -c "DROP DATABASE IF EXISTS linktoken_demo" -c "CREATE DATABASE linktoken_demo"
psql_q -d linktoken_demo -f sql/deploy.sql

echo
echo "######## Part 1: the SQL API in psql"
"$PGBIN/psql" -X -q -d linktoken_demo -f sql/examples/demo.sql

echo
echo "######## Part 2: the gateway and the five flows"
psql_q -d linktoken_demo -o /dev/null -f sql/examples/flows.sql
scripts/demo-gateway.sh start "$GATEWAY_DIR" "$LISTEN" \
    "host=127.0.0.1 port=$PGPORT user=linktoken_web dbname=linktoken_demo"
BASE="http://$LISTEN"
link() { # link PURPOSE SUBJECT [PAYLOAD]
    local t
    t=$(psql_q -At -d linktoken_demo -c "SELECT linktoken.issue('$1', '$2', '${3:-{\}}')")
    echo "$BASE/t/$t"
}
ASSIGNMENT=$(psql_q -At -d linktoken_demo -c "SELECT id FROM app.assignments LIMIT 1")
# The mailer: a key pair (the database seals each message's link to its public key), a local
# SMTP sink that writes every mail to .pgdata/demo-mail/<n>.eml, and the mailer between them.
MAIL_DIR=$ROOT/.pgdata/demo-mail
rm -rf "$MAIL_DIR"
scripts/demo-gateway.sh mail "$GATEWAY_DIR" "$MAIL_DIR" \
    "host=127.0.0.1 port=$PGPORT user=linktoken_mail dbname=linktoken_demo" "$BASE"
psql_q -d linktoken_demo -o /dev/null -v key="$(cat "$GATEWAY_DIR/mailer.key.pub")" \
    <<<"SELECT linktoken.set_mailer_key(decode(:'key', 'hex'))"
# One request through the form, as a browser would send it: the mail arrives in the sink.
curl -s -o /dev/null -d 'identifier=anna@example.org' "$BASE/request/password_reset"
for _ in $(seq 50); do ls "$MAIL_DIR"/*.eml >/dev/null 2>&1 && break; sleep 0.2; done
FIRST_MAIL=$(ls "$MAIL_DIR"/*.eml 2>/dev/null | head -1)
MAILED_LINK=$(grep -m1 -o "$BASE/t/[A-Za-z0-9_-]*" "${FIRST_MAIL:-/dev/null}" || true)
# The demo plays the app that would set the bind cookie in the asking browser: a random value.
BIND=$(psql_q -At -d linktoken_demo -c "SELECT encode(crypto.gen_random_bytes(24), 'hex')")
IFS='|' read -r MAGIC_TOKEN MAGIC_CODE < <(psql_q -At -d linktoken_demo \
    -c "SELECT token, code FROM linktoken.issue_with_code('magic_login', '42', bind => '$BIND')")
MAGIC_LINK="$BASE/t/$MAGIC_TOKEN"
cat <<EOT

Open these in a browser (each link works once, except unsubscribe):
  1. Verify email address:      $(link verify_email 42 '{"email": "anna@example.org"}')
  2. Reset password:            $(link password_reset 42)
  3. Magic sign-in:             $MAGIC_LINK
     (bound to the browser that asked for it, so here it shows the code form instead; the code
      is $MAGIC_CODE for user number 42, at $BASE/code/magic_login)
  4. Unsubscribe (one-click):   $(link newsletter_unsubscribe 42)
  5. PHQ-9 questionnaire:       $(link phq9 "$ASSIGNMENT")

The request forms ("enter your email"; known: anna@example.org and ben@example.org; any other
address gets the same answer and no mail):
  Resend verification:          $BASE/request/verify_email
  Forgot password:              $BASE/request/password_reset
  Sign in with a link:          $BASE/request/magic_login
The mails the mailer "sent" are files under $MAIL_DIR/ (one .eml each, newest last):
  ls -t $MAIL_DIR/
  The demo asked for a password reset for anna@example.org; its mail is ${FIRST_MAIL:-not there yet (see mailer.log)},
  with this link: ${MAILED_LINK:-(none yet)}

What happened is in the database:
  psql -h $PGHOST -p $PGPORT -U postgres linktoken_demo \\
    -c 'SELECT * FROM app.users' -c 'SELECT * FROM app.phq9_responses' \\
    -c 'SELECT at, event, status, purpose, client_ip, user_agent FROM linktoken.audit ORDER BY at'
Logs: $GATEWAY_DIR/gateway.log, mailer.log, smtp-sink.log   Stop everything: make clean
EOT
