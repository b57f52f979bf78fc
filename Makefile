# Every target creates/uses .venv itself. `make test` is what CI runs.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
PAPER_OUT  ?= _build/paper

.PHONY: help venv test unit book lab wheel notebooks paper paper-smoke bench clean

help:
	@echo "make test       unit tests + notebooks (nbval, tiny; papermill, paper on stand-ins) + book build (-W, tiny)"
	@echo "make book       execute the notebooks at the book profile and build _build/html"
	@echo "make lab        open the course (notebooks/) in JupyterLab"
	@echo "make wheel      build the installable package (dist/repair-*.whl, default weights inside)"
	@echo "make notebooks  re-execute notebooks/ in place at the book profile (committed outputs)"
	@echo "make paper      run every notebook at the paper profile with papermill (GPU machine)"
	@echo "make paper-smoke  the paper profile of every notebook, shrunk, on local stand-ins (CPU)"
	@echo "make bench      run the benchmarks/ scripts and print their figures"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt   # -e .[book,test]: pyproject.toml's lists
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP)
	REPAIR_PROFILE=tiny $(PY) -m pytest --nbval-lax tests notebooks

unit: $(STAMP)
	REPAIR_PROFILE=tiny $(PY) -m pytest -m "not book and not paper" tests

paper-smoke: $(STAMP)
	$(PY) -m pytest -m paper tests/test_paper_profile.py

book: $(STAMP)
	REPAIR_PROFILE=book $(VENV)/bin/jupyter-book build -W -n --keep-going .
	@echo "open _build/html/index.html"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

wheel: $(STAMP)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .
	rm -rf build
	@ls -l dist/repair-*.whl

notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do \
	  REPAIR_PROFILE=book $(PY) -m repair.notebook_cli execute "$$nb" || exit 1; done

paper: $(STAMP)
	mkdir -p $(PAPER_OUT)
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/papermill "$$nb" "$(PAPER_OUT)/$$(basename $$nb)" -p PROFILE paper \
	    --cwd notebooks || exit 1; done

bench: $(STAMP)
	for script in benchmarks/*.py; do echo "== $$script"; $(PY) "$$script" || exit 1; done

clean:
	rm -rf _build .pytest_cache build dist
