"""The suite's four tasks; each sub-package exposes `DOMAIN` (see common/domain.py)."""
