"""Fake secrets planted in every config layer (YAML, --set, profile, environment) never reach
a record: the MLflow store and its artifacts, the warehouse, stdout, stderr and the logs."""
import logging
import shutil
from pathlib import Path

import yaml

from realsyn.conf import CONF_DIR
from realsyn.jobs.core.redact import RedactingFilter

SECRETS = {
    "yaml": "FAKE-YAML-SECRET-q1w2e3",
    "yaml_uri": "FAKE-URI-PASSWORD-z9x8",
    "set": "FAKE-SET-SAS-TOKEN-7u6y",
    "set_sig": "FAKESIGNATUREr4t5",
    "profile": "FAKE-PROFILE-SESSION-TOKEN-p0o9",
    "env": "FAKE-ENV-AWS-SECRET-m3n4",
    "env_token": "FAKE-ENV-MLFLOW-TOKEN-k7j6",
    # names and shapes the key rule used to miss
    "executor_pat": "dapi0123456789abcdef0123456789abcdef",
    "pgpassword": "FAKE-PG-PW-h5g4",
    "db_pass": "FAKE-DB-PASS-f3d2",
    "github_pat": "ghp_FAKEgithubTOKEN0123456789abcdefABCD",
    "passphrase": "FAKE-SNOWFLAKE-PHRASE-s1a2",
    "bearer": "FAKEbearerVALUE9a8b7c6d5e",
    "env_header_random": "Zq8xK2mP9vR4tY7wB3nL6cH1",
}


def planted(tmp_path: Path, sample_dir, monkeypatch):
    conf_dir = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf_dir)
    profile = conf_dir / "profiles" / "local.yaml"
    data = yaml.safe_load(profile.read_text()) or {}
    data.setdefault("spark", {}).setdefault("conf", {})["spark.hadoop.fs.s3a.session.token"] = SECRETS["profile"]
    profile.write_text(yaml.safe_dump(data))
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"spark": {"conf": {
        "spark.hadoop.fs.s3a.secret.key": SECRETS["yaml"],
        "spark.hadoop.fs.s3a.endpoint": f"https://AKIAFAKEUSER:{SECRETS['yaml_uri']}@127.0.0.1:1"}}}))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRETS["env"])
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRETS["env_token"])
    monkeypatch.setenv("PGPASSWORD", SECRETS["pgpassword"])
    monkeypatch.setenv("DB_PASS", SECRETS["db_pass"])
    sets = [f"spark.conf.spark.hadoop.fs.azure.sas.box.acct.blob.core.windows.net={SECRETS['set']}",
            f"spark.conf.spark.hadoop.fs.s3a.bucket.data.endpoint=https://acct.example/c?sv=2022&sig={SECRETS['set_sig']}",
            f"spark.conf.spark.executorEnv.DATABRICKS_PAT={SECRETS['executor_pat']}",
            f"spark.conf.spark.executorEnv.GITHUB_PAT={SECRETS['github_pat']}",
            f"spark.conf.spark.executorEnv.SNOWFLAKE_PASSPHRASE={SECRETS['passphrase']}",
            f"spark.conf.spark.executorEnv.SERVICE_ID={SECRETS['env_header_random']}",
            "spark.conf.spark.hadoop.fs.s3a.bucket.data.custom.headers="
            f"'Authorization: Bearer {SECRETS['bearer']}'",
            f"run.input={sample_dir}/obelics/*.parquet"]
    return conf_dir, user, sets


def leaks(text: str) -> list[str]:
    return [name for name, s in SECRETS.items() if s in text]


def leaks_in_tree(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            got = leaks(path.read_bytes().decode("latin-1"))
            if got:
                found[str(path.relative_to(root))] = got
    return found


def test_planted_secrets_reach_no_record(spark, sample_dir, tmp_path, monkeypatch, capsys):
    from realsyn.jobs import cli
    from realsyn.jobs.core.config import load_config
    from realsyn.jobs.pipeline import run_stages
    conf_dir, user, sets = planted(tmp_path, sample_dir, monkeypatch)
    work = tmp_path / "work"
    overrides = [f"run.work_dir={work}", "spark.master=local[2]", "spark.progress_bar=false"] + sets
    cfg = load_config("local", [str(user)], overrides, conf_dir=conf_dir)
    assert cfg.get("spark.conf")["spark.hadoop.fs.s3a.session.token"] == SECRETS["profile"]   # planted for real

    log_lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: log_lines.append(handler.format(record))
    handler.addFilter(RedactingFilter())
    logging.getLogger().addHandler(handler)
    try:
        logging.getLogger("realsyn").warning("settings: %s", cfg.get("spark.conf"))
        said: list[str] = []
        result = run_stages(cfg, ["ingest"], say=said.append)
        assert result.outcomes[0].ledgers[0].kept > 0
        cli_args = ["--conf", str(user)] + [a for s in sets for a in ("--set", s)]
        assert cli.main(["config", *cli_args]) == 0
        failing = cli.main(["ingest", *cli_args, "--work-dir", str(tmp_path / "w2"),
                            "--input", f"s3a://AKIAFAKEINPUT:{SECRETS['yaml_uri']}@bucket/in/*.parquet"])
        assert failing != 0
    finally:
        logging.getLogger().removeHandler(handler)
    out = capsys.readouterr()
    assert "***" in out.out, "realsyn config shows that secrets were there"
    assert leaks(out.out) == [] and leaks(out.err) == [], (leaks(out.out), leaks(out.err))
    assert leaks("\n".join(said)) == [] and leaks("\n".join(log_lines)) == []
    assert leaks_in_tree(work / "mlflow") == {}
    assert leaks_in_tree(work / "warehouse") == {}
    assert (work / "mlflow").exists() and any((work / "warehouse").rglob("*.json"))
