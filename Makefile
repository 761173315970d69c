# The two commands of the README, plus lint.
.PHONY: up test lint provision screenshots

provision:
	@bash infra/provision.sh

# Quiet: a few lines of provisioning, one per process, then the URL and token when ready.
up: provision
	@bash infra/web.sh
	@.venv/bin/cartolog db migrate
	@CARTOLOG_BASE_DOMAIN=$${CARTOLOG_BASE_DOMAIN:-localhost} .venv/bin/cartolog up --demo

test: provision
	bash infra/web.sh
	bash infra/gis.sh
	.venv/bin/python -m pytest

lint: provision
	.venv/bin/ruff check .
	.venv/bin/mypy

# Refresh the README's and docs/web.md's pictures (the browser tests; tests alone write to build/).
screenshots: provision
	bash infra/web.sh
	CARTOLOG_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots .venv/bin/python -m pytest tests/e2e/browser
