# Two commands for a newcomer:  make run  (viewer on the demo study)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench package clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -c constraints.txt -e '.[dev,trainer]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@scripts/qt_system_check.sh
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "No display found (DISPLAY and WAYLAND_DISPLAY are empty)."; \
	  echo "  On a desktop: run 'make run' from a terminal inside the graphical session."; \
	  echo "  On a server:  xvfb-run -a -s '-screen 0 1600x1000x24' $(VENV)/bin/ich-viewer --demo"; \
	  echo "  Without a window: $(VENV)/bin/ich-viewer inspect PATH --json, or analyze PATH --json out.json"; \
	  exit 2; \
	fi
	$(VENV)/bin/ich-viewer --demo

test: $(STAMP)
	@scripts/qt_system_check.sh --offscreen
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache
