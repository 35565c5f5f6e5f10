"""The page tests' helpers live in tests/pages.py; its fixtures are registered by tests/conftest.py."""
