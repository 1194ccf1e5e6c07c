# Adversarial Robustness, Reproduced: set-up, execution, book and tests.
#   make book                          set up, execute every chapter (PROFILE=small|medium|full, default small), build
#                                      _build/html
#   make test                          set up, lint, all tests (the student install in fresh venvs, every chapter
#                                      at the small profile, the book with -W); make unit: the quick ones only
#   make chapter NB=00_primer PROFILE=full
#   make student                       regenerate the student notebooks student/*.ipynb from notebooks/*.py
#   make sweep NB=00_primer PROFILE=small SEEDS=0-4 ARGS="-p eps 0.05,0.1,0.2"   many runs at once on Ray
#   make publish [REMOTE=origin]       push the built book (_build/html) to the remote's gh-pages branch
#   make lock [UPGRADE=1]              regenerate constraints.txt, the exact tested set, from pyproject.toml
#   make gpu-check                     every chapter at medium on one CUDA GPU (<= 10 min), book/gpu_check.json
#   make verdicts PROFILE=medium [RECORD=1]   run every chapter at PROFILE and report each verdict that differs
#                                      from notebooks/claims/*.yaml; RECORD=1 writes the measured ones there
# Everything lives in .venv; the only prerequisite is python3 (>= 3.10).
# pyproject.toml states what the code needs (lower bounds, as a library does, so that a student's own torch
# stays). constraints.txt, the lock, pins the exact set the book is tested with; set-up installs with it. It
# is one top-level file beside pyproject.toml because pip, conda (environment.yml) and readers look for it
# there, and it belongs to no other folder's concern (params/ holds chapter parameters, .ci/ only CI's entry).

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= small
NB      ?= 00_primer
LOCK    := constraints.txt
REMOTE  ?= origin
HTML    ?= _build/html
CHAPTER_TIMEOUT ?= 1800
SEEDS   ?= 0
ARGS    ?=
export CHAPTER_TIMEOUT

.PHONY: setup lock chapters chapter sweep book student publish test unit lint format benchmark clean verdicts gpu-check

setup: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -c $(LOCK) -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name adv-robust --display-name "Python 3 (adv-robust)" >/dev/null
	touch $@

# Keeps every pin that still fits and resolves only what is new; UPGRADE=1 re-resolves all but torch/torchvision.
# Needs no set-up: pip resolves without installing (helpers.lock uses the standard library only).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m helpers.lock $(if $(UPGRADE),--upgrade)

chapters: setup
	$(BIN)/python -m helpers.pipeline run --all --profile $(PROFILE)

chapter: setup
	$(BIN)/python -m helpers.pipeline run $(NB) --profile $(PROFILE)

# A grid of runs as Ray tasks (python -m helpers.sweep --help): NB may list several chapters; ARGS takes -p NAME
# VALUES, --workers N, --address HOST:PORT (a Ray cluster), --name. Results: results/sweeps/<name>/summary.json.
sweep: setup
	$(BIN)/python -m helpers.sweep $(NB) --profile $(PROFILE) --seeds $(SEEDS) $(ARGS)

# The claims files hold, per profile, the verdict expected (small: asserted by make test) or measured (larger
# profiles, with revision and date). A flip is kept in the claim's history.
verdicts: chapters
	$(BIN)/python -m helpers.claims $(if $(RECORD),record,compare)

student: setup
	$(BIN)/python -m helpers.pipeline student

book: chapters
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

# GitHub Pages serves the gh-pages branch; --no-jekyll keeps Sphinx's _static/ and _images/ folders served.
# No set-up step: a built book implies one, and without a book there is nothing to publish.
publish:
	@test -f $(HTML)/index.html || { echo "publish: no book in $(HTML) (no index.html): run \`make test\` (the checked book) or \`make book\` first" >&2; exit 1; }
	$(BIN)/ghp-import --no-jekyll --push --force --remote $(REMOTE) --branch gh-pages \
		--message "Book built from $$(git rev-parse --short HEAD 2>/dev/null || echo an unversioned tree)" $(HTML)
	@echo "publish: $(HTML) is on $(REMOTE)'s gh-pages branch"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: setup
	$(BIN)/python -m pytest -m "not notebooks and not slow"

test: lint
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python benchmarks/attack_throughput.py

# Every chapter at the medium profile on one CUDA device, at most 10 minutes in all; writes book/gpu_check.json
# (timings and verdicts; commit it). Refuses with exit code 2 where there is no CUDA device.
gpu-check: setup
	$(BIN)/python -m helpers.gpu_check --profile medium

clean:
	rm -rf _build book/chapters/*.ipynb results
