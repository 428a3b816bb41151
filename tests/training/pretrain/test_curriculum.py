"""The gated curriculum: when a gate advances, replay of earlier stages, the default stages, `solved`."""

from __future__ import annotations

import random

from masktax.training.pretrain.curriculum import CurriculumState, Stage, default_stages, gate, pick_stage


def test_gate_advances_only_after_threshold_and_min_steps():
    stages = default_stages(min_steps=100)
    st = CurriculumState()
    assert not gate(st, step=50, accuracy=0.5, stages=stages, threshold=0.85)
    assert gate(st, step=60, accuracy=0.9, stages=stages, threshold=0.85)  # S0 has no minimum
    assert st.stage == 1 and st.stage_start == 60 and st.advances == [[60, 1]]
    assert not gate(st, step=120, accuracy=1.0, stages=stages, threshold=0.85)  # only 60 steps in S1a
    assert gate(st, step=160, accuracy=0.85, stages=stages, threshold=0.85)
    st.stage = len(stages) - 1
    assert not gate(st, step=10_000, accuracy=1.0, stages=stages, threshold=0.85)  # last stage stays
    assert st.last_gate == 1.0 and len(st.gates) == 5
    assert CurriculumState.from_dict(st.to_dict()) == st


def test_replay_picks_earlier_stages_at_the_given_rate():
    rng = random.Random(0)
    st = CurriculumState(stage=3)
    picks = [pick_stage(rng, st, 0.2) for _ in range(5000)]
    assert set(picks) == {0, 1, 2, 3}
    assert abs(sum(p < 3 for p in picks) / 5000 - 0.2) < 0.03
    assert {pick_stage(rng, CurriculumState(), 0.5) for _ in range(100)} == {0}


def test_default_stages_remove_the_repeat_gently_and_round_trip():
    stages = default_stages()
    assert [s.spec.repeat_prob for s in stages[:3]] == [1.0, 0.5, 0.0]
    assert stages[-1].spec.max_tokens >= 1200 and stages[-1].spec.max_tail == 200
    assert all(Stage.from_dict(s.to_dict()) == s for s in stages)


def test_solved_needs_patience_consecutive_final_stage_gates():
    from masktax.training.pretrain.curriculum import solved

    state = CurriculumState(gates=[[2, 0, 1.0], [4, 1, 0.96], [6, 1, 0.97]])
    assert not solved(state, n_stages=2, threshold=0.95, patience=3)  # the first gate was on S0
    assert solved(state, n_stages=2, threshold=0.95, patience=2)
    assert not solved(state, n_stages=2, threshold=0.97, patience=2)  # 0.96 < 0.97
    assert not solved(state, n_stages=2, threshold=None, patience=1)
