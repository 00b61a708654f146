# Two commands: `make demo` and `make test`. Each creates .venv if missing and installs the
# core and every plugin into it (editable) before running.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(wildcard plugins/mmu-*)
STAMP := $(VENV)/.mmu-installed

.PHONY: demo test install bench lint clean

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]" $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mmu demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest tests $(addsuffix /tests,$(PLUGINS))

bench: $(STAMP)
	$(PY) bench/bench_random_access.py --sizes 0.5,2,8
	$(PY) bench/bench_crossmatch.py

lint: $(STAMP)
	$(PY) -m ruff check mmu_core plugins tests bench

clean:
	rm -rf $(VENV) demo-output bench/data
