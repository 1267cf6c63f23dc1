"""The link key every test process uses (set in the environment by tests/conftest.py and passed
to the worker, scheduler and CLI processes tests start), so links and hashes agree across them."""

from __future__ import annotations

# Random (secrets.token_urlsafe(32)); a test key, never a deployment's.
TEST_SECRET_KEY = "q3Jv7Yw2bN0sXk9LfT4mRcA1uPzE8hGdWiQyO5nB6tU"
