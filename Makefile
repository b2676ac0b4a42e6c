# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CASE ?= demo-case
HOST ?= 127.0.0.1
PORT ?= 5000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install test-deps browser lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml .ci/pins.txt
	$(BIN)/pip install -q --no-deps --require-hashes -r .ci/pins.txt
	$(BIN)/pip install -q -e '.[test,tantivy]'
	touch $@

install: $(VENV)/.installed

# The demo case: every bundled fixture export, ingested afresh. Exit 3 is expected and accepted:
# the fixtures hold deliberately malformed records, and ingest reports each one.
INGEST = $(BIN)/discovery ingest --case $(CASE) --custodian "Demo custodian"
# The web UI needs an account: `make demo` adds this admin with a fresh random password each time and
# prints it once, in a box. No default password exists anywhere.
DEMO_ADMIN = demo-admin
LOGIN_BOX = import sys; url, user, password = sys.argv[1:]; \
	lines = ["Log in to the demo case (make run serves it):", "", "  URL:       " + url, "  user:      " + user, \
	"  password:  " + password, "", "A new password each time make demo runs; it is shown only here."]; \
	width = max(map(len, lines)) + 2; edge = "+" + "=" * width + "+"; \
	print("\n".join(["", edge, *("| " + line.ljust(width - 1) + "|" for line in lines), edge, ""]))
OK3 = || [ $$? -eq 3 ]
demo: install
	rm -rf $(CASE)
	$(INGEST) fixtures/lark fixtures/slack fixtures/teams fixtures/discord fixtures/gchat \
		fixtures/mattermost fixtures/rsmf $(OK3)
	$(INGEST) --timezone Asia/Shanghai fixtures/telegram "fixtures/whatsapp/WhatsApp Chat - Mark Ellison" \
		"fixtures/whatsapp/WhatsApp Chat with Refund cleanup.txt" "fixtures/whatsapp/WhatsApp Chat with Wang Fang.zip" $(OK3)
	$(INGEST) --timezone Europe/Berlin "fixtures/whatsapp/WhatsApp Chat mit Revisionsteam.txt" $(OK3)
	$(INGEST) --timezone Asia/Shanghai fixtures/generic/chatvault_finance-close_2024-10.csv \
		--map "native_id=Message ID,conversation=Chat,kind=Type,sender=From,sent_at=Date,text=Body,thread_id=Thread,reply_to=Reply To,edited=Edited,deleted=Deleted,attachment=Attachment" $(OK3)
	$(INGEST) fixtures/generic/matrix_ops-retention.jsonl \
		--map "native_id=event_id,sent_at=origin_server_ts,conversation=room_name,sender_id=sender,sender_name=sender_display,text=content.body,reply_to=in_reply_to,thread_id=thread_root" $(OK3)
	$(BIN)/discovery search whitewash --case $(CASE) --context 2 --limit 3
	@password=$$($(BIN)/python -c 'from discovery.users import generate_password; print(generate_password())') && \
	printf '%s\n' "$$password" | $(BIN)/discovery users add $(DEMO_ADMIN) --role admin --password-stdin --case $(CASE) && \
	$(BIN)/python -c '$(LOGIN_BOX)' "http://$(HOST):$(PORT)/login" "$(DEMO_ADMIN)" "$$password"

run: demo
	$(BIN)/discovery serve --case $(CASE) --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download), and fonts
# so screenshots show Chinese text and emoji instead of empty boxes.
BROWSER_PACKAGES = chromium fonts-wqy-zenhei fonts-noto-color-emoji
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi wqy; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_PACKAGES); fi

test-deps: install browser

test: test-deps
	$(BIN)/ruff check discovery tests
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check discovery tests

bench: install
	$(BIN)/discovery bench --messages 200000

clean:
	rm -rf $(VENV) $(CASE) build *.egg-info test-artifacts
