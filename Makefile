# Two commands do everything: `make demo` and `make test`. Both are idempotent.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean

# The environment is exactly what uv.lock pins (`uv lock` after changing pyproject.toml; a
# stale lock is an error, not a silent re-resolve). uv installs the several-GB torch stack in
# seconds from its cache; pip alone takes minutes. uv itself comes from the lock too: pip
# installs that version into a new venv, then `uv sync` makes the venv match the lock.
UV_VERSION = $(shell python3 -c "import tomllib; print(next(p['version'] for p in \
	tomllib.load(open('uv.lock', 'rb'))['package'] if p['name'] == 'uv'))")

$(STAMP): pyproject.toml uv.lock
	test -x $(VENV)/bin/uv || { python3 -m venv $(VENV) && \
		$(VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	UV_PROJECT_ENVIRONMENT=$(VENV) $(VENV)/bin/uv sync --locked --extra dev
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

# Style, formatting, and models whose migration was not written.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PYTHON) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var
