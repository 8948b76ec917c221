# linktoken — see README.md.
.PHONY: demo test deps install package bench clean

demo:            ## build, start a throwaway cluster and the gateway, show the API and one link per flow
	scripts/demo.sh

test:            ## every test suite (unit, pg_test, pg_regress, isolation, integration)
	tests/run-all.sh

deps:            ## install what building needs (PostgreSQL 15, headers, libclang, cargo-pgrx)
	scripts/install-deps.sh

install: deps    ## build and install the extension into PostgreSQL 15
	scripts/install-extension.sh

package: deps    ## Debian packages (release build) under target/debian/: the extension per PostgreSQL major, the gateway
	scripts/package.sh

bench:           ## benchmark (release build, throwaway cluster; BENCH_PG_MAJOR=15|16|18): bench/REPORT.md with charts (~17 min)
	bench/run.sh

clean:
	-scripts/demo-gateway.sh stop .pgdata/demo-gateway
	-scripts/pg-cluster.sh destroy .pgdata/demo
	-scripts/pg-cluster.sh destroy .pgdata/test
	-scripts/pg-cluster.sh destroy .pgdata/bench
	rm -rf .pgdata target/test-output
