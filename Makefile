# Adversarial Robustness, Reproduced: set-up, execution, book and tests.
#   make book                          set up, execute every chapter (PROFILE=quick|ci|full), build _build/html
#   make test                          set up, lint, unit tests, every chapter at the ci profile, book with -W
#   make chapter NB=00_primer PROFILE=full
#   make student                       regenerate the student notebooks student/*.ipynb from notebooks/*.py
#   make sweep NB=00_primer PROFILE=ci SEEDS=0-4 ARGS="-p eps 0.05,0.1,0.2"   many runs at once on Ray
# Everything lives in .venv; the only prerequisite is python3 (>= 3.10).

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= quick
NB      ?= 00_primer
CHAPTER_TIMEOUT ?= 1800
SEEDS   ?= 0
ARGS    ?=
export CHAPTER_TIMEOUT

.PHONY: setup chapters chapter sweep book student test unit lint format benchmark clean

setup: $(VENV)/.ready

$(VENV)/.ready: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name adv-robust --display-name "Python 3 (adv-robust)" >/dev/null
	touch $@

chapters: setup
	$(BIN)/python -m helpers.pipeline run --all --profile $(PROFILE)

chapter: setup
	$(BIN)/python -m helpers.pipeline run $(NB) --profile $(PROFILE)

# A grid of runs as Ray tasks (python -m helpers.sweep --help): NB may list several chapters; ARGS takes -p NAME
# VALUES, --workers N, --address HOST:PORT (a Ray cluster), --name. Results: results/sweeps/<name>/summary.json.
sweep: setup
	$(BIN)/python -m helpers.sweep $(NB) --profile $(PROFILE) --seeds $(SEEDS) $(ARGS)

student: setup
	$(BIN)/python -m helpers.pipeline student

book: chapters
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: setup
	$(BIN)/python -m pytest -m "not notebooks"

test: lint
	$(BIN)/python -m pytest

benchmark: setup
	$(BIN)/python benchmarks/attack_throughput.py

clean:
	rm -rf _build book/chapters/*.ipynb results
