"""Custom checkov checks for the templates (checkov --external-checks-dir infra/checks)."""
