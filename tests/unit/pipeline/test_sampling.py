"""The pipeline's pure parts: sampling, names, configuration."""

from __future__ import annotations

import pytest
from gtaudit.exceptions import InvalidNameError
from gtaudit.models.stages import ConsolidatedLabel
from gtaudit.names import JOB_NAME_MAX, job_name, validate_job_name
from gtaudit.pipeline.config import PipelineConfig, validate_prefix
from gtaudit.pipeline.jobs import name_for, parse_name
from gtaudit.pipeline.sampling import AuditPolicy, LabelerAccuracy, LabelerStats, draw, labeler_rate, shortfall

RUN = "20261124t100000-ab12"


def test_draw_is_deterministic_and_uniform_enough() -> None:
    assert draw(RUN, "x-1", 1) == draw(RUN, "x-1", 1)
    assert draw(RUN, "x-1", 1) != draw(RUN, "x-1", 2)
    values = [draw(RUN, f"obj-{i}", 1) for i in range(4000)]
    assert all(0 <= v < 1 for v in values)
    share = sum(v < 0.2 for v in values) / len(values)
    assert 0.17 < share < 0.23


def test_labeler_rate_climbs_with_rejections() -> None:
    assert labeler_rate(0.2, 0, 0) == 0.2
    assert labeler_rate(0.2, 10, 0) == 0.2
    assert labeler_rate(0.2, 10, 1) == pytest.approx(0.36)
    assert labeler_rate(0.2, 10, 5) == 1.0
    assert labeler_rate(0.2, 10, 2) < labeler_rate(0.2, 10, 3)


def test_sampled_share_follows_the_rate_and_the_worst_labeler() -> None:
    stats = LabelerStats.merge([{"bad": {"audited": 4, "rejected": 2}}, {"good": {"audited": 4, "rejected": 0}}])
    policy = AuditPolicy("sample", 0.1, 0.8, RUN, stats)
    good = sum(policy.decide(f"o{i}", 1, ["good"], 0.95) is not None for i in range(2000))
    bad = sum(policy.decide(f"o{i}", 1, ["bad"], 0.95) is not None for i in range(2000))
    both = sum(policy.decide(f"o{i}", 1, ["good", "bad"], 0.95) is not None for i in range(2000))
    assert 150 < good < 260
    assert bad == 2000  # a labeler rejected on half their objects is audited on everything
    assert both == 2000


def test_low_agreement_is_always_audited_and_policy_all_audits_everything() -> None:
    policy = AuditPolicy("sample", 0.0, 0.8, RUN)
    assert policy.decide("o", 1, ["w"], 0.79) == "low-agreement"
    assert policy.decide("o", 1, ["w"], 0.8) is None
    assert policy.decide("o", 1, ["w"], None) is None
    assert AuditPolicy("all", 0.0, 0.8, RUN).decide("o", 1, ["w"], 0.99) == "policy-all"


def test_long_stack_name_and_round_9_fit_ground_truths_rules() -> None:
    config = PipelineConfig(bucket="b", table="t", prefix="my-very-long-stack-name1")
    for kind in ("labeling", "rework", "audit"):
        name = name_for(config, kind, 9, RUN)
        assert len(name) <= JOB_NAME_MAX
        assert validate_job_name(name) == name
        assert name.startswith("my-very-long-stack-name1-")
        assert parse_name(name) == (kind, 9, RUN)
    # names.job_name itself also copes with a prefix far beyond 24 characters (shortened + hashed)
    very_long = job_name("a-stack-name-that-goes-on-and-on-well-beyond-any-sensible-length", "rework", 9, RUN)
    assert len(very_long) <= JOB_NAME_MAX and very_long.endswith(f"-rework-r9-{RUN}")


@pytest.mark.parametrize("bad", ["", "Upper", "a" * 25, "-lead", "trail-", "under_score"])
def test_bad_prefixes_are_refused(bad: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_prefix(bad)


def test_parse_name_refuses_other_names() -> None:
    assert parse_name("gtaudit-labeling-r1-notarun") is None
    assert parse_name("someones-job") is None


def test_config_from_env_and_validation() -> None:
    env = {
        "DATA_BUCKET": "b",
        "PIPELINE_TABLE": "t",
        "JOB_PREFIX": "gt-dev",
        "MAX_ROUNDS": "9",
        "AUDIT_POLICY": "sample",
        "AUDIT_SAMPLE_RATE": "0.25",
        "LABELERS_PER_OBJECT": "3",
    }
    c = PipelineConfig.from_env(env)
    assert (c.bucket, c.prefix, c.max_rounds, c.audit_policy, c.sample_rate, c.labelers_per_object) == (
        "b",
        "gt-dev",
        9,
        "sample",
        0.25,
        3,
    )
    with pytest.raises(ValueError, match="MAX_ROUNDS"):
        PipelineConfig.from_env({**env, "MAX_ROUNDS": "10"})
    with pytest.raises(ValueError, match="AUDIT_POLICY"):
        PipelineConfig.from_env({**env, "AUDIT_POLICY": "some"})
    with pytest.raises(ValueError, match="must be a number"):
        PipelineConfig.from_env({**env, "AUDIT_SAMPLE_RATE": "lots"})
    assert PipelineConfig.from_env({**env, "GOLD_ACCURACY_THRESHOLD": "0.65"}).gold_threshold == 0.65
    assert PipelineConfig.from_env(env).gold_threshold == 0.8
    with pytest.raises(ValueError, match="GOLD_ACCURACY_THRESHOLD must be in"):
        PipelineConfig.from_env({**env, "GOLD_ACCURACY_THRESHOLD": "1.2"})


# ---------------------------------------------------------------- accuracy in the policy
def _score(inter: int, union: int) -> dict[str, object]:
    return {"iou": inter / union, "classes": {"person": {"inter": inter, "union": union}}}


def test_an_accuracy_below_the_threshold_raises_the_rate_to_all_at_twice_the_error() -> None:
    assert shortfall(None, 0.8) == shortfall(0.8, 0.8) == shortfall(0.95, 0.8) == 0.0
    assert shortfall(0.7, 0.8) == pytest.approx(0.5)
    assert shortfall(0.6, 0.8) == pytest.approx(1.0) and shortfall(0.1, 0.8) == 1.0
    assert shortfall(0.99, 1.0) == 1.0
    assert labeler_rate(0.2, 0, 0, accuracy=0.7, threshold=0.8) == pytest.approx(0.6)
    assert labeler_rate(0.2, 10, 1, accuracy=0.79, threshold=0.8) == pytest.approx(0.36)  # the larger of the two
    assert labeler_rate(0.2, 10, 0, accuracy=0.9, threshold=0.8) == 0.2


def test_accuracy_is_the_micro_averaged_gold_iou_else_the_consensus_iou() -> None:
    acc = LabelerAccuracy()
    acc.add_label(
        ConsolidatedLabel.model_validate(
            {
                "status": "consolidated",
                "scores": {"a": _score(9, 10), "b": _score(5, 10)},
                "gold": {"scores": {"a": _score(1, 100)}},
            }
        )
    )
    acc.add_label(ConsolidatedLabel.model_validate({"status": "consolidated", "scores": {"a": _score(1, 90)}}))
    assert acc.accuracy("a") == pytest.approx(0.01)  # gold, whatever the consensus says
    assert acc.accuracy("b") == pytest.approx(0.5)  # no gold: the consensus
    assert acc.accuracy("c") is None
    assert acc.consensus["a"].iou == pytest.approx(10 / 100)  # sums, not a mean of 0.9 and 0.011
    assert acc.below(0.8) == {"a": pytest.approx(0.01)}
    merged = LabelerAccuracy.merge([acc.dump(), acc.dump(), {"c": {"consensus": {"inter": 3, "union": 4}}}])
    assert merged.dump()["a"] == {
        "consensus": {"inter": 20, "union": 200, "objects": 4},
        "gold": {"inter": 2, "union": 200, "objects": 2},
    }
    assert merged.accuracy("c") == pytest.approx(0.75)


def test_the_policy_samples_an_inaccurate_labeler_more() -> None:
    acc = LabelerAccuracy.merge(
        [{"bad": {"gold": {"inter": 6, "union": 10}}, "good": {"consensus": {"inter": 95, "union": 100}}}]
    )
    policy = AuditPolicy("sample", 0.1, 0.5, RUN, accuracy=acc, accuracy_threshold=0.8)
    assert policy.rate_for(["bad"]) == 1.0 and policy.rate_for(["good"]) == 0.1
    assert all(policy.decide(f"o{i}", 1, ["good", "bad"], 0.99) == "sampled" for i in range(50))
