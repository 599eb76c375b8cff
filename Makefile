# Two commands for a newcomer:  make run  (viewer on the demo study)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench package clean package-test package-cuda

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
	@scripts/node_system_check.sh
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Packaged install (PyInstaller, one folder). The CPU flavour is built in its own venv with
# a CPU-only torch (constraints-cpu.txt), never from .venv's CUDA torch. Rebuilds only when
# a bundled file changed. See README "Packaging".
PKG_VENV  ?= .venv-package
PKG_PY    := $(PKG_VENV)/bin/python
PKG_STAMP := $(PKG_VENV)/.installed
PKG_APP   := dist/ich-viewer/ich-viewer
PKG_INPUTS := ich_viewer.spec $(shell find ich_viewer packaging resources models -type f -not -path '*/__pycache__/*' 2>/dev/null)

$(PKG_STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PKG_PY) || $(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(PKG_VENV)/bin/pip install -c constraints-cpu.txt -e '.[package]'
	touch $(PKG_STAMP)

$(PKG_APP): $(PKG_STAMP) $(PKG_INPUTS)
	mkdir -p build && touch build/package-started
	nice -n 10 $(PKG_PY) -m PyInstaller --noconfirm --log-level WARN ich_viewer.spec
	$(PKG_PY) packaging/check_bundle.py dist/ich-viewer --flavour cpu
	touch -r build/package-started $(PKG_APP)  # files edited during the build trigger the next one

package: $(PKG_APP)

package-test: $(PKG_APP)
	@scripts/qt_system_check.sh --offscreen
	QT_QPA_PLATFORM=offscreen $(PKG_APP) --smoke-test

# CUDA flavour: same spec, a CUDA torch (several GB). Not part of CI; see README.
package-cuda:
	test -x .venv-cuda/bin/python || $(PYTHON) -m venv .venv-cuda
	.venv-cuda/bin/pip install -q --upgrade pip setuptools wheel
	.venv-cuda/bin/pip install -c constraints.txt -e '.[package]'
	ICH_VIEWER_FLAVOUR=cuda nice -n 10 .venv-cuda/bin/python -m PyInstaller --noconfirm --log-level WARN ich_viewer.spec
	.venv-cuda/bin/python packaging/check_bundle.py dist/ich-viewer-cuda --flavour cuda

clean:
	rm -rf $(VENV) build dist .pytest_cache
