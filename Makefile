# Two commands do everything: `make demo` and `make test`. Both are idempotent.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean

# uv installs the several-GB torch stack in seconds from its cache; pip alone takes minutes.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --python $(PYTHON) -e '.[dev]'
	touch $(STAMP)

# Browser tests drive Debian's chromium: Playwright's own browser download is not used.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }; \
	else echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; fi

install: $(STAMP)

demo: $(STAMP)
	$(PYTHON) manage.py setup_demo
	$(PYTHON) manage.py serve_demo 127.0.0.1:8000

test: $(STAMP) $(CHROMIUM)
	$(PYTHON) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var
