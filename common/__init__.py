"""Shared, domain-free code of lr-suite: config, schedules, optimizers, callbacks, runs."""
