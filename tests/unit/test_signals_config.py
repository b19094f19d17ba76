"""Signal configuration: the shipped YAML equals the parameter table; bad files name the key."""

from __future__ import annotations

import pytest

from quantedge.signals.config import (
    DEFAULT_PATH,
    PARAMS,
    SignalConfigError,
    from_mapping,
    load_config,
    render_yaml,
)


def test_shipped_yaml_is_the_table():
    assert DEFAULT_PATH.read_text() == render_yaml()
    cfg = load_config(DEFAULT_PATH)
    assert cfg.values == {p.name: p.default for p in PARAMS}
    assert cfg.vector().shape == (len(PARAMS),)


def test_partial_file_takes_defaults(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("signals:\n  creep:\n    max_velocity_pct_s: 0.08\n")
    cfg = load_config(f)
    assert cfg["creep.max_velocity_pct_s"] == 0.08
    assert cfg["absorption.persist_s"] == next(p.default for p in PARAMS if p.name == "absorption.persist_s")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("signals:\n  creep:\n    max_velocity: 1\n", "creep.max_velocity"),
        ("signals:\n  creeep:\n    max_velocity_pct_s: 1\n", "unknown section 'creeep'"),
        ("signals:\n  sinkhole:\n    near_low_ratio: 1.5\n", "near_low_ratio = 1.5 is outside [0, 1]"),
        ("signals:\n  exit:\n    drop_lo_bps: fast\n", "exit.drop_lo_bps must be a number"),
        ("signals:\n  exit:\n    drop_lo_bps: true\n", "exit.drop_lo_bps must be a number"),
        ("signals:\n  creep:\n    buy_share_lo: 0.99\n", "buy_share_lo (0.99) must be below"),
        ("signals:\n  creep: [1, 2]\n", "section 'creep' must be a mapping"),
        ("signals:\n  creep:\n    persist_s: .nan\n", "creep.persist_s"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SignalConfigError) as ei:
        load_config(f)
    assert needle in str(ei.value)
    assert str(f) in str(ei.value)


def test_bad_yaml_names_the_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("signals:\n  creep:\n    persist_s: [1\n")
    with pytest.raises(SignalConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        load_config(f)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(SignalConfigError, match="nope.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_with_values_validates():
    cfg = from_mapping({})
    assert cfg.with_values(trigger__on_score=0.7)["creep.on_score"] == 0.7
    with pytest.raises(SignalConfigError, match="trigger.on_score"):
        cfg.with_values(trigger__on_score=2.0)


def test_on_score_per_signal_and_shorthand():
    """Each signal has its own on_score; trigger.on_score sets them all unless a signal sets its own,
    and every on_score must stay above trigger.off_score."""
    cfg = from_mapping({"trigger": {"on_score": 0.6}, "exit": {"on_score": 0.9}})
    assert cfg["absorption.on_score"] == 0.6 and cfg["composite.on_score"] == 0.6
    assert cfg["exit.on_score"] == 0.9
    assert from_mapping({})["sinkhole.on_score"] != from_mapping({})["dark_pool.on_score"]
    with pytest.raises(SignalConfigError, match="trigger.off_score .* must be below creep.on_score"):
        from_mapping({"creep": {"on_score": 0.1}})
    with pytest.raises(SignalConfigError, match="trigger.on_score must be a number"):
        from_mapping({"trigger": {"on_score": "high"}})


def test_with_mapping_lays_a_nested_mapping_over_a_config():
    base = load_config().with_values(creep__on_score=0.5)
    cfg = base.with_mapping({"composite": {"on_score": 0.4}, "absorption": {"persist_s": 10}})
    assert cfg["composite.on_score"] == 0.4 and cfg["absorption.persist_s"] == 10.0
    assert cfg["creep.on_score"] == 0.5  # the rest is the base config's
    # trigger.on_score sets every on_score the mapping does not set itself
    cfg = base.with_mapping({"trigger": {"on_score": 0.3}, "exit": {"on_score": 0.9}})
    assert cfg["creep.on_score"] == 0.3 and cfg["composite.on_score"] == 0.3 and cfg["exit.on_score"] == 0.9
    assert base.with_mapping(None) is base
    with pytest.raises(SignalConfigError, match="params: creep.buy_share_lo .* must be below"):
        base.with_mapping({"creep": {"buy_share_lo": 0.9}}, "params")
    with pytest.raises(SignalConfigError, match="expected a mapping"):
        base.with_mapping({"creep": 0.3})


def test_rendered_calibrated_file_loads_back_exactly(tmp_path):
    """A calibrated config written by render_yaml reads back as the same values, tiny and long ones
    included (YAML reads 5e-05 without a mantissa dot as a string)."""
    from quantedge.signals.config import render_yaml

    cfg = load_config().with_values(creep__min_rise_bps=0.00005, creep__buy_share_lo=0.6123456789)
    f = tmp_path / "c.yaml"
    f.write_text(render_yaml(cfg))
    assert load_config(f).values == cfg.values
