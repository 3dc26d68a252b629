"""The public import paths: the concept folders of ``jno.nnx`` and the module paths of
the flat layout, which name the same modules and objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import jno

# Flat module path -> (module it names, a public name it holds).
FLAT_PATHS = {
    "jno.nnx.models": ("jno.nnx.networks.mlp", "MLP"),
    "jno.nnx.jets": ("jno.nnx.networks.jets", "Jet"),
    "jno.nnx.embeddings": ("jno.nnx.networks.embeddings", "PeriodicEmbedding"),
    "jno.nnx.modified_mlp": ("jno.nnx.networks.modified_mlp", "ModifiedMLP"),
    "jno.nnx.piratenet": ("jno.nnx.networks.piratenet", "PirateNet"),
    "jno.nnx.balancer_base": ("jno.nnx.balancers.base", "Balancer"),
    "jno.nnx.gradient_base": ("jno.nnx.balancers.gradient_base", "GradientBalancer"),
    "jno.nnx.gradient_balancers": ("jno.nnx.balancers.gradient", "LRAnnealing"),
    "jno.nnx.random_balancers": ("jno.nnx.balancers.stochastic", "ReLoBRaLo"),
    "jno.nnx.ntk": ("jno.nnx.balancers.ntk", "NTKBalancer"),
    "jno.nnx.causal": ("jno.nnx.balancers.causal", "CausalWeights"),
    "jno.nnx.normalize": ("jno.nnx.balancers.normalize", "LossNormalizer"),
    "jno.nnx.scaled_schedule": ("jno.nnx.schedules.scaled", "ScaledSchedule"),
    "jno.nnx.adaptive_schedules": ("jno.nnx.schedules.adaptive", "DLRS"),
}


@pytest.mark.parametrize("flat", sorted(FLAT_PATHS))
def test_flat_module_paths_name_the_concept_modules(flat):
    target, name = FLAT_PATHS[flat]
    module = importlib.import_module(flat)
    assert module is importlib.import_module(target)
    assert getattr(module, name) is getattr(jno.nnx, name)


def test_flat_paths_import_in_a_fresh_interpreter():
    code = (
        "from jno.nnx.models import MLP\n"
        "import jno.nnx.gradient_balancers as g\n"
        "from jno.nnx.schedules import LearningRateSchedule, DLRS\n"
        "from jno.nnx.balancers import ReLoBRaLo, SoftAdapt\n"
        "import jno\n"
        "assert MLP is jno.nnx.MLP and g.LRAnnealing is jno.nnx.LRAnnealing\n"
        "assert LearningRateSchedule is jno.LearningRateSchedule and DLRS is jno.nnx.DLRS\n"
        "assert ReLoBRaLo is jno.nnx.ReLoBRaLo and SoftAdapt is jno.nnx.SoftAdapt\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "ok"


def test_every_public_name_of_jno_nnx_has_one_concept_home():
    homes = {
        p: importlib.import_module(f"jno.nnx.{p}") for p in ("networks", "balancers", "schedules")
    }
    for name in jno.nnx.__all__:
        found = [p for p, pkg in homes.items() if name in pkg.__all__]
        if name in ("BalancerState", "ScheduleState"):  # the shared variable types
            assert not found and getattr(jno.nnx, name) is getattr(jno.nnx.state, name)
            continue
        assert len(found) == 1, f"{name} is exported by {found or 'no concept folder'}"
        assert getattr(jno.nnx, name) is getattr(homes[found[0]], name)
