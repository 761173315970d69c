# The two commands of the README, plus lint.
.PHONY: up test lint provision

provision:
	bash infra/provision.sh

up: provision
	.venv/bin/cartolog db migrate
	.venv/bin/cartolog up --demo

test: provision
	.venv/bin/python -m pytest

lint: provision
	.venv/bin/ruff check .
	.venv/bin/mypy
