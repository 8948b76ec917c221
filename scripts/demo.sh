#!/usr/bin/env bash
# `make demo`: installs what is missing, builds and installs the extension, starts a throwaway
# PostgreSQL 15 cluster under .pgdata/demo (as the postgres user), walks through
# issue -> peek -> redeem -> redeem again in psql, then starts the gateway with the example app
# (sql/examples/flows.sql) and prints one clickable link per flow.
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

What happened is in the database:
  psql -h $PGHOST -p $PGPORT -U postgres linktoken_demo \\
    -c 'SELECT * FROM app.users' -c 'SELECT * FROM app.phq9_responses' \\
    -c 'SELECT at, event, status, purpose, client_ip, user_agent FROM linktoken.events ORDER BY id'
Gateway log: $GATEWAY_DIR/gateway.log   Stop everything: make clean
EOT
