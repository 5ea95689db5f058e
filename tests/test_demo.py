"""``coachbridge demo --once``: the whole pipeline on SQLite, through real HTTP."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from bridge.cli import cli


def test_demo_once_enrolls_members(tmp_path):
    workdir = tmp_path / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--once", "--port", "0", "--dir", str(workdir)]
    )
    assert result.exit_code == 0, result.output
    output = result.output

    assert "202 queued: 2" in output
    assert "202 duplicate: 1" in output
    assert "401 wrong key: 1" in output
    assert "inbox after processing: done 2, duplicate 1, ignored 2" in output
    reconcile = re.search(r"full reconcile: members_read (\d+), enrolled (\d+)", output)
    assert reconcile is not None
    assert int(reconcile.group(1)) == 200
    assert int(reconcile.group(2)) > 100
    assert "errors 0" in output
    assert "Strength Foundations / Rolling with Maya" in output


def test_demo_enrollments_listed_as_json(tmp_path):
    workdir = tmp_path / "demo"
    runner = CliRunner()
    runner.invoke(cli, ["demo", "--once", "--port", "0", "--dir", str(workdir)])
    config = tmp_path / "demo.toml"
    config.write_text(
        f'[state]\ndatabase_url = "sqlite:///{workdir}/state.sqlite3"\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["--config", str(config), "enrollments", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {row["program"] for row in rows} == {
        "strength-foundations",
        "mindful-eating",
    }
    assert all(row["status"] == "active" for row in rows)
    fixed = [row for row in rows if row["program"] == "mindful-eating"]
    assert len({row["start_date"] for row in fixed}) == 1
