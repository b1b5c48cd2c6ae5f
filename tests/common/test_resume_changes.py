"""Which config differences a resumed run accepts (common/resume.py:resume_changes)."""

from __future__ import annotations

import pytest

from common.errors import UserError
from common.resume import resume_changes

STORED = {"epochs": 3, "learning_rate": 0.1, "optimizer": "nesterov"}


def test_a_field_added_later_matches_the_value_that_does_what_the_old_run_did():
    old_run = dict(STORED)  # written before `cutout` and `weight_averaging` existed
    wanted = {**STORED, "cutout": 0, "weight_averaging": 0.0}
    assert resume_changes(old_run, wanted, done_epochs=1) == {}
    with pytest.raises(UserError, match=r"cutout \(run: 0, now: 12\)"):
        resume_changes(old_run, {**wanted, "cutout": 12}, done_epochs=1)


def test_evaluation_only_fields_may_change_and_training_fields_may_not():
    stored = {**STORED, "test_time_flip": True}
    assert resume_changes(stored, {**STORED, "test_time_flip": False}, done_epochs=1) == {}
    assert resume_changes(STORED, {**STORED, "epochs": 5}, done_epochs=1) == {"epochs": [3, 5]}
    with pytest.raises(UserError, match="optimizer"):
        resume_changes(STORED, {**STORED, "optimizer": "adam"}, done_epochs=1)
