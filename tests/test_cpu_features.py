"""What the CPU computes natively: the bfloat16 check behind the warning on emulated bfloat16."""

from __future__ import annotations

import warnings

import pytest

from morec import cpu_features
from morec.cpu_features import EmulatedBfloat16Warning, has_native_bfloat16, warn_if_bfloat16_is_emulated
from morec.dynamics_reward import DynamicsReward

AVX2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
AMX = "model name\t: Intel(R) Xeon(R)\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16\n"


@pytest.fixture
def cpuinfo(monkeypatch, tmp_path):
    """Lay a /proc/cpuinfo text over the real one: ``cpuinfo(text)``; ``None`` for no file at all."""

    def lay(text: str | None) -> None:
        path = tmp_path / "cpuinfo"
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)
        monkeypatch.setattr(cpu_features, "CPUINFO", path)
        cpu_features.cpuinfo_field.cache_clear()

    yield lay
    cpu_features.cpuinfo_field.cache_clear()


@pytest.mark.parametrize("text, native", [(AVX2, False), (AMX, True), (ARM, None), (None, None)])
def test_native_bfloat16_is_read_from_the_cpu_flags(cpuinfo, text, native):
    cpuinfo(text)
    assert has_native_bfloat16() is native


def test_bfloat16_warns_only_on_a_cpu_that_emulates_it(cpuinfo):
    cpuinfo(AVX2)
    with pytest.warns(EmulatedBfloat16Warning, match=r"mobile.penalty_dtype=bfloat16 on a CPU without .*\(AMD EPYC\)"):
        warn_if_bfloat16_is_emulated("mobile.penalty_dtype=bfloat16", "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_bfloat16_is_emulated("mobile.penalty_dtype=bfloat16", "cuda")  # a GPU's bfloat16 is its own
        for text in (AMX, ARM, None):  # bfloat16 hardware, or no way to tell
            cpuinfo(text)
            warn_if_bfloat16_is_emulated("mobile.penalty_dtype=bfloat16", "cpu")


def test_scoring_the_dynamics_reward_in_bfloat16_warns_where_it_is_emulated(cpuinfo):
    cpuinfo(AVX2)
    reward = DynamicsReward(2, 1)
    with pytest.warns(EmulatedBfloat16Warning, match="filter.score_dtype=bfloat16"):
        reward.set_score_dtype("bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reward.set_score_dtype("float32")


def test_mobile_with_a_bfloat16_penalty_warns_where_it_is_emulated(cpuinfo):
    from morec.learners import MOBILE, MobileConfig
    from tests.learner_harness import TinyEnsemble, make_algo

    cpuinfo(AVX2)
    with pytest.warns(EmulatedBfloat16Warning, match="mobile.penalty_dtype=bfloat16"):
        make_algo(MOBILE, dynamics=TinyEnsemble(), mobile=MobileConfig(penalty_dtype="bfloat16"))
