# The two commands of the README, plus lint.
.PHONY: up test lint provision

provision:
	bash infra/provision.sh

up: provision
	bash infra/web.sh
	.venv/bin/cartolog db migrate
	CARTOLOG_BASE_DOMAIN=$${CARTOLOG_BASE_DOMAIN:-localhost} .venv/bin/cartolog up --demo

test: provision
	bash infra/web.sh
	bash infra/gis.sh
	.venv/bin/python -m pytest

lint: provision
	.venv/bin/ruff check .
	.venv/bin/mypy
