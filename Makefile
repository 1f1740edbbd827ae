# make run: serve the app on SQLite with the demo story. make test: lint and the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app

# The socket.io browser client comes from the npm registry, checked against a known hash.
SOCKETIO_CLIENT_VERSION := 4.8.4
SOCKETIO_CLIENT_SHA256 := d5d79a35039e860b32bdef4795528b05c2f788d4b2d9dacc913120e2878f7b3f
SOCKETIO_CLIENT := static/vendor/socket.io.min.js

# axe-core checks every page for accessibility in the browser tests; same fetch, same check.
AXE_VERSION := 4.11.0
AXE_SHA256 := e9e5863c33a874f09bc01acd9234b7e3c871479f5eef8802fa582544465e6d01
AXE := tests/e2e/vendor/axe.min.js

.PHONY: install install-test run serve test test-fast lint format audit security bench mutate clean

install: $(VENV)/.installed $(SOCKETIO_CLIENT)

$(SOCKETIO_CLIENT): | $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	@touch $@

$(SOCKETIO_CLIENT):
	@mkdir -p static/vendor
	@tmp=$$(mktemp -d) && \
	  (cd $$tmp && npm pack --silent socket.io-client@$(SOCKETIO_CLIENT_VERSION) >/dev/null) && \
	  tar -xzf $$tmp/socket.io-client-$(SOCKETIO_CLIENT_VERSION).tgz -C $$tmp package/dist/socket.io.min.js && \
	  $(BIN)/python -c "import hashlib, sys; data = open(sys.argv[1], 'rb').read(); \
	    sys.exit(hashlib.sha256(data).hexdigest() != '$(SOCKETIO_CLIENT_SHA256)' and 'checksum mismatch')" \
	    $$tmp/package/dist/socket.io.min.js && \
	  cp $$tmp/package/dist/socket.io.min.js $@ && rm -rf $$tmp
	@echo "fetched socket.io client $(SOCKETIO_CLIENT_VERSION)"

$(AXE): | $(VENV)/.installed
	@mkdir -p $(dir $(AXE))
	@tmp=$$(mktemp -d) && \
	  (cd $$tmp && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null) && \
	  tar -xzf $$tmp/axe-core-$(AXE_VERSION).tgz -C $$tmp package/axe.min.js && \
	  $(BIN)/python -c "import hashlib, sys; data = open(sys.argv[1], 'rb').read(); \
	    sys.exit(hashlib.sha256(data).hexdigest() != '$(AXE_SHA256)' and 'checksum mismatch')" \
	    $$tmp/package/axe.min.js && \
	  cp $$tmp/package/axe.min.js $@ && rm -rf $$tmp
	@echo "fetched axe-core $(AXE_VERSION)"

install-test: install $(VENV)/.installed-test $(AXE)

run: install
	$(FLASK) db upgrade
	$(FLASK) demo --if-empty
	$(BIN)/python app.py

# Production: migrate (one process at a time), then gunicorn with one gevent-websocket
# worker; deploy/gunicorn.conf.py says why one, and deploy/README how to run several.
serve: install
	$(FLASK) schema-upgrade
	exec $(BIN)/gunicorn --config deploy/gunicorn.conf.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Known vulnerabilities in the pinned requirements (and what they pull in), from PyPI's
# advisory data. Where PyPI's per-release data cannot be reached (an offline mirror, as on
# the machines this project is built on), pip-audit skips every package: that is said
# plainly rather than passed off as a clean audit. Vulnerabilities found always fail.
audit: install-test
	@out=$$($(BIN)/pip-audit --requirement requirements-test.txt --progress-spinner off 2>&1); \
	  status=$$?; skipped=$$(echo "$$out" | grep -c "could not be audited"); \
	  if [ $$status -ne 0 ]; then echo "$$out"; exit $$status; fi; \
	  if [ $$skipped -gt 0 ]; then \
	    echo "pip-audit: PyPI's advisory data is unreachable from here: $$skipped packages" \
	         "were NOT audited (run 'make audit' where pypi.org answers)."; \
	  else echo "$$out"; fi

# Security lint of the application code (settings in pyproject.toml, [tool.bandit]).
security: install-test
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive liveblog deploy

test: install-test lint security audit
	$(BIN)/python -m pytest
	node --test tests/js

# The fast lane, for the edit-and-test loop: every test that needs no Chromium, no nginx or
# gunicorn and no server process of its own (markers browser, deploy, slow: tests/README.md).
test-fast: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not browser and not deploy and not slow"

$(VENV)/.installed-bench: $(VENV)/.installed-test requirements-bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	@touch $@

# Fan-out: liveblog against the Node socket.io peer at 1,000 to 15,000 readers, about 3
# minutes (the peer's socket.io package comes from the npm registry on first use, bench/peer).
# Then the story page: a 10,000-update story against /healthz with wrk, and a crowd of 5,000;
# and one connection flooding events, against /healthz and a reader's update.
bench: install-test $(VENV)/.installed-bench
	$(BIN)/python -m bench
	$(BIN)/python -m bench.pages
	$(BIN)/python -m bench.flood

# Mutation testing (not part of `make test`: about 20 minutes): mutmut changes the code where
# a silent mistake costs most, one small change at a time, and runs the fast tests that cover
# it; a change no test notices is a survivor. Whole modules, and in reader.py and services.py
# the page's caching headers and the scheduler's claim. Settings in pyproject.toml
# ([tool.mutmut]); two workers, as the machines it runs on are shared.
MUTATE := "liveblog.security.*" "liveblog.pagecache.*" "liveblog.changes.*" \
	"liveblog.connections.*" "liveblog.extensions.*" "liveblog.signin.*" \
	"liveblog.reader.x_cacheable__*" "liveblog.reader.x_story_response__*" \
	"liveblog.reader.x_shared_key__*" "liveblog.reader.x_count_render__*" \
	"liveblog.services.x_publish_due__*" "liveblog.services.x__claim__*"
MUTATE_CHILDREN ?= 2

mutate: install-test
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTATE)
	$(BIN)/python tests/mutation_score.py $(MUTATE)

clean:
	rm -rf $(VENV) $(SOCKETIO_CLIENT) $(AXE) .pytest_cache mutants
