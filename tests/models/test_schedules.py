"""Learning-rate schedules: warm-up then cosine decay, per optimizer step."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from pipeline.errors import PipelineError
from pipeline.models.schedules import learning_rate_schedule


def _rates(schedule, steps: int) -> np.ndarray:
    return np.array([float(ops.convert_to_numpy(schedule(step))) for step in range(steps + 1)])


def test_constant_is_the_plain_learning_rate():
    assert learning_rate_schedule("constant", 1e-3, steps_per_epoch=10, epochs=5) == 1e-3


def test_cosine_warms_up_linearly_then_decays_to_zero():
    schedule = learning_rate_schedule("cosine", 1e-3, steps_per_epoch=10, epochs=5,
                                      warmup_epochs=1)
    rates = _rates(schedule, 50)
    assert rates[0] == pytest.approx(0.0, abs=1e-9)
    assert rates[5] == pytest.approx(5e-4, rel=1e-3)  # halfway through the warm-up
    assert rates[10] == pytest.approx(1e-3, rel=1e-3)  # the peak ends the warm-up
    after = rates[10:]
    assert np.all(np.diff(after) <= 1e-12)  # never rises again
    assert rates[30] == pytest.approx(5e-4, rel=1e-2)  # half-way through the decay: cos = 0
    assert rates[50] == pytest.approx(0.0, abs=1e-9)


def test_cosine_without_warmup_starts_at_the_peak():
    rates = _rates(learning_rate_schedule("cosine", 2e-5, steps_per_epoch=4, epochs=3), 12)
    assert rates[0] == pytest.approx(2e-5)
    assert rates[12] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("schedule", "warmup", "message"), [
    ("linear", 0.0, "`schedule` 'linear'"),
    ("cosine", 5.0, "`warmup_epochs` 5.0"),
    ("cosine", -1.0, "`warmup_epochs` -1.0"),
])
def test_bad_settings_name_the_field(schedule, warmup, message):
    with pytest.raises(PipelineError, match=message):
        learning_rate_schedule(schedule, 1e-3, steps_per_epoch=10, epochs=5, warmup_epochs=warmup)


def test_a_scheduled_optimizer_follows_the_schedule_and_a_constant_one_keeps_its_rate():
    from pipeline.models.schedules import ScheduleOptions, scheduled_optimizer

    constant = scheduled_optimizer("rmsprop", 1e-3, ScheduleOptions(), steps_per_epoch=4,
                                   epochs=3)
    assert float(ops.convert_to_numpy(constant.learning_rate)) == pytest.approx(1e-3)
    cosine = scheduled_optimizer("adam", 1e-3, ScheduleOptions("cosine", 1.0),
                                 steps_per_epoch=4, epochs=3)
    rates = _rates(cosine._learning_rate, 12)
    assert rates[4] == pytest.approx(1e-3, rel=1e-3) and rates[12] == pytest.approx(0, abs=1e-9)
    with pytest.raises(PipelineError, match="`warmup_epochs` 3"):
        scheduled_optimizer("adam", 1e-3, ScheduleOptions("cosine", 3), steps_per_epoch=4,
                            epochs=3)
