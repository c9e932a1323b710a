"""Start-up checks: each problem in one line naming the setting; typos warned with a guess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepflix.runtime import startup
from deepflix.runtime.instance import CannotStart
from deepflix.stages.faults import FaultPlan

pytestmark = pytest.mark.unit


def test_an_unknown_name_gets_the_closest_known_one() -> None:
    warnings = startup.unknown_names(
        {"DEEPFLIX_IMAGE_CONCURRENCY": "3", "DEEPFLIX_PORT": "1", "HOME": "/root"},
        ["DEEPFLIX_HSOT", "DEEPFLIX_ZZZZZZZZZZZZZZZZZZZZZZZZZZZ", "DEEPFLIX_URL"],
    )
    assert warnings == [
        "unknown setting DEEPFLIX_IMAGE_CONCURRENCY in the environment, ignored;"
        " did you mean DEEPFLIX_IMAGES_CONCURRENCY?",
        "unknown setting DEEPFLIX_HSOT in the .env, ignored; did you mean DEEPFLIX_HOST?",
        "unknown setting DEEPFLIX_ZZZZZZZZZZZZZZZZZZZZZZZZZZZ in the .env, ignored",
    ]


def test_every_setting_and_the_clis_names_are_known() -> None:
    known = startup.known_names()
    assert {"DEEPFLIX_DATA_DIR", "DEEPFLIX_FAULTS_FILE", "DEEPFLIX_TOKEN"} <= known
    assert startup.unknown_names({name: "x" for name in known}) == []


def test_dotenv_names_are_read_as_the_settings_read_them(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# a comment\nexport DEEPFLIX_A=1\nDEEPFLIX_B = 2\n\nnot a setting\n")
    assert startup.dotenv_names(env) == ["DEEPFLIX_A", "DEEPFLIX_B"]
    assert startup.dotenv_names(tmp_path / "absent") == []


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1"])
def test_an_ip_address_is_a_host(host: str) -> None:
    startup.check_host(host)


def test_a_host_name_is_refused_naming_the_setting() -> None:
    with pytest.raises(CannotStart, match=r"^DEEPFLIX_HOST=localhost is not an IP address"):
        startup.check_host("localhost")


def test_a_data_directory_under_a_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CannotStart) as e:
        startup.check_writable(tmp_path / "file" / "data", "DEEPFLIX_DATA_DIR")
    assert str(e.value).startswith(f"DEEPFLIX_DATA_DIR={tmp_path}/file/data is not a writable")
    assert "\n" not in str(e.value)
    startup.check_writable(tmp_path / "new" / "data", "DEEPFLIX_DATA_DIR")  # made


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"story": {kind: 1}}', "not readable JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"stroy": {}}', "'stroy' is not a stage"),
        ('{"story": "permanent"}', "the rule for story must be an object"),
        ('{"video": {"kind": "slow"}}', "kind 'slow' is not one of"),
        ('{"video": {"kind": "delay", "seconds": "ten"}}', "seconds must be a number"),
        ('{"video": {"match": 3}}', "match must be text"),
    ],
)
def test_a_malformed_faults_file_stops_the_start(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "faults.json"
    path.write_text(text)
    with pytest.raises(CannotStart) as e:
        startup.check_faults(path)
    assert str(e.value).startswith(f"DEEPFLIX_FAULTS_FILE={path}: ") and says in str(e.value)


def test_a_good_faults_file_or_none_passes(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"images": {"kind": "delay", "seconds": 2, "match": "SLOW"}}))
    startup.check_faults(path)
    startup.check_faults(tmp_path / "absent.json")  # read at each use: may come later
    startup.check_faults(None)
    FaultPlan(path).validate()
