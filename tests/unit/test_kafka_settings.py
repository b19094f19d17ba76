"""Kafka client settings for a managed cluster (SASL/SSL...): the settings file, ``--kafka-option``,
their errors, and that they reach every client (no broker needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from quantedge.cli.main import app
from quantedge.live.kafka_io import (
    KafkaConfig,
    KafkaSettingsError,
    load_client_properties,
    parse_client_options,
    parse_client_properties,
)

runner = CliRunner()

KEYS = st.from_regex(r"[a-z][a-z0-9_.]{0,30}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40).map(str.strip)


@given(st.dictionaries(KEYS, VALUES, max_size=8), st.sampled_from(["=", ": ", " = "]))
def test_properties_round_trip(settings: dict[str, str], sep: str) -> None:
    text = "# managed cluster\n\n" + "\n".join(f"{k}{sep}{v}" for k, v in settings.items()) + "\n"
    assert parse_client_properties(text) == settings


def test_properties_keep_separators_inside_values_and_skip_comments() -> None:
    text = "! comment\n  security.protocol = SASL_SSL\nsasl.jaas.config=a=b:c\nsasl.username: user:1\n"
    assert parse_client_properties(text) == {"security.protocol": "SASL_SSL", "sasl.jaas.config": "a=b:c",
                                             "sasl.username": "user:1"}


def test_a_bad_line_names_file_and_line(tmp_path) -> None:
    f = tmp_path / "client.properties"
    f.write_text("security.protocol=SSL\nthis line has no separator\n")
    with pytest.raises(KafkaSettingsError, match=r"client.properties:2: expected key=value"):
        load_client_properties(f)
    with pytest.raises(KafkaSettingsError, match="cannot read"):
        load_client_properties(tmp_path / "missing.properties")
    with pytest.raises(KafkaSettingsError, match="expected KEY=VALUE"):
        parse_client_options(["sasl.mechanism"])


def test_settings_reach_every_client_and_secrets_are_masked(tmp_path, monkeypatch) -> None:
    f = tmp_path / "client.properties"
    f.write_text("bootstrap.servers=broker1:9093\nsecurity.protocol=SASL_SSL\nsasl.password=s3cret\n")
    monkeypatch.setenv("QUANTEDGE_KAFKA_CONFIG", str(f))
    monkeypatch.delenv("QUANTEDGE_KAFKA_BOOTSTRAP", raising=False)
    cfg = KafkaConfig.from_env().with_settings(parse_client_options(["sasl.mechanism=PLAIN"]))
    assert cfg.bootstrap_servers == "broker1:9093"
    for conf in (cfg.producer_conf(), cfg.consumer_conf("g"), cfg.client_conf()):
        assert conf["security.protocol"] == "SASL_SSL" and conf["sasl.mechanism"] == "PLAIN"
        assert conf["bootstrap.servers"] == "broker1:9093"
    assert "s3cret" not in cfg.describe_settings() and "sasl.password=***" in cfg.describe_settings()


def test_cli_reports_a_setting_the_client_refuses(tmp_path) -> None:
    """librdkafka refuses an unknown key when the client is built: exit 2 with the reason, no traceback."""
    res = runner.invoke(app, ["publish", "--source", "iqfeed", "--symbols", "NEPT",
                              "--kafka-option", "no.such.setting=1", "--bootstrap", "127.0.0.1:1"])
    assert res.exit_code == 2, res.output
    assert "Kafka client settings" in res.output and "no.such.setting" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["scan", "--source", "kafka", "--kafka-option", "oops"])
    assert res.exit_code == 2 and "expected KEY=VALUE" in res.output
