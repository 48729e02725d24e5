# The two commands of the README; each does all set-up itself on a fresh Debian machine (root).
.PHONY: demo test unit lab-up lab-down bench

PY := .venv/bin/python

demo:            ## bring the lab up and run the replication demo in it
	bash scripts/setup.sh
	$(PY) -m tests.demo

test:            ## the whole test suite: unit tests, then lab tests (real OpenZFS in two VMs)
	bash scripts/setup.sh
	$(PY) -m tests.lab up
	$(PY) -m tests.lab --zfs backports build
	$(PY) -m pytest -p no:cacheprovider tests; status=$$?; \
	    $(PY) -m tests.lab down; $(PY) -m tests.lab --zfs backports down; exit $$status

unit:            ## fast tests only (no VMs)
	bash scripts/setup.sh
	$(PY) -m pytest -m 'not lab' tests/unit tests/tooling

lab-up:
	bash scripts/setup.sh
	$(PY) -m tests.lab up

lab-down:
	$(PY) -m tests.lab down
	$(PY) -m tests.lab --zfs backports down

bench:           ## benchmarks against the raw pipe and the peers (not in CI)
	bash scripts/setup.sh
	$(PY) -m bench
