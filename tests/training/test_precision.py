"""Precision: ``auto`` is mixed exactly where the hardware computes bfloat16 natively."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from pipeline.errors import PipelineError
from pipeline.training.options import TrainingOptions
from pipeline.training.precision import native_bfloat16, policy_name, precision_policy

ZEN3 = "flags\t\t: fpu vme sse sse2 avx avx2 fma bmi2\n"


@pytest.mark.parametrize(("flags", "native"), [
    (ZEN3, False),
    ("flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n", True),  # Zen 4
    ("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n", True),  # Sapphire Rapids
    ("flags\t\t: fpu avx2 avx512_bf16x\n", False),  # whole flags only
])
def test_native_bfloat16_reads_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: some CPU\n" + flags)
    assert native_bfloat16(str(cpuinfo)) is native


def test_an_unreadable_cpuinfo_is_no_bfloat16(tmp_path):
    assert native_bfloat16(str(tmp_path / "missing")) is False


def test_auto_is_mixed_for_training_a_base_where_the_hardware_has_it():
    gpu = bool(tf.config.list_physical_devices("GPU"))
    mixed = "mixed_float16" if gpu else "mixed_bfloat16"
    assert policy_name("auto", trains_base=True) == (
        mixed if gpu or native_bfloat16() else "float32")
    assert policy_name("auto") == (mixed if gpu else "float32")  # features, heads: float32
    assert policy_name("mixed") == mixed
    assert policy_name("float32", trains_base=True) == "float32"
    with precision_policy("auto", trains_base=True) as name:
        assert keras.config.dtype_policy().name == name == policy_name("auto", True)
    assert keras.config.dtype_policy().name == "float32"


def test_auto_is_a_precision_and_a_typo_is_one_line():
    TrainingOptions(precision="auto").validate()
    with pytest.raises(PipelineError, match="`precision` 'half': choose one of float32, mixed, "
                                            "auto"):
        TrainingOptions(precision="half").validate()
