"""The pipeline's pure parts: sampling, names, configuration."""

from __future__ import annotations

import pytest
from gtaudit.exceptions import InvalidNameError
from gtaudit.names import JOB_NAME_MAX, job_name, validate_job_name
from gtaudit.pipeline.config import PipelineConfig, validate_prefix
from gtaudit.pipeline.jobs import name_for, parse_name
from gtaudit.pipeline.sampling import AuditPolicy, LabelerStats, draw, labeler_rate

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
