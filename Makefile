# The seed's make targets, over the one `bulwark` binary. Each target builds
# the release binary when needed and runs one command. Point them at a config
# and data directory through the usual environment variables or as make
# variables:
#
#   make ops-check BULWARK_CONFIG=/etc/bulwark.toml BULWARK_DATA_DIR=/var/lib/bulwark
#   make report PERIOD=2026-01 FORMAT=html OUTPUT=report-2026-01.html

BULWARK := cargo run --release --quiet --
# Passed as options rather than relying on the environment, so a variable
# given on the make command line works the same as an exported one, and an
# unset one falls back to the binary's defaults.
ARGS := $(if $(BULWARK_CONFIG),--config "$(BULWARK_CONFIG)") $(if $(BULWARK_DATA_DIR),--data-dir "$(BULWARK_DATA_DIR)")
PERIOD ?= $(shell date -u +%Y-%m)
FORMAT ?= html

.PHONY: ops-check uptime slo backup-verify dr-drill report test run build

## One pass/fail table over everything; exit 1 if anything fails.
ops-check:
	$(BULWARK) $(ARGS) ops check

## Probe every monitor once; exit 1 if one is down.
uptime:
	$(BULWARK) $(ARGS) uptime check --once

## Every SLO: target, attainment, budget left, burn rates.
slo:
	$(BULWARK) $(ARGS) slo status

## Verify every configured backup (check, read-data subset, sample restore).
backup-verify:
	$(BULWARK) $(ARGS) verify

## Run every configured DR drill and write its report.
dr-drill:
	$(BULWARK) $(ARGS) drill run

## The monthly evidence report (PERIOD=YYYY-MM, FORMAT=html|md|json, OUTPUT=FILE).
report:
	$(BULWARK) $(ARGS) report --period "$(PERIOD)" --format "$(FORMAT)" $(if $(OUTPUT),--output "$(OUTPUT)")

## The whole test suite (starts PostgreSQL and restic when missing).
test:
	scripts/test.sh

## API, dashboard, scheduler and probes.
run:
	$(BULWARK) $(ARGS) serve

build:
	cargo build --release
