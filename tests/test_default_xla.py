"""The suite's ``default_xla`` marker: such a test runs in its own process under the
user's XLA flags, not the suite's fast-compile ones (``tests/conftest.py``)."""

from __future__ import annotations

import os

import pytest


@pytest.mark.default_xla
def test_a_marked_test_runs_in_its_own_process_under_the_users_flags():
    assert os.environ.get("JNO_TESTS_DEFAULT_XLA") == "1"
    assert "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", "")


def test_the_other_tests_run_under_the_fast_compile_flags():
    assert "JNO_TESTS_DEFAULT_XLA" not in os.environ
    assert "--xla_cpu_use_fusion_emitters=false" in os.environ["XLA_FLAGS"]
