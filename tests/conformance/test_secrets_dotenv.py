"""Runs the secrets conformance suite against DotenvSecrets, plus file format and mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sparkwing.errors import ConfigError, UsageError
from sparkwing.surfaces.open import open_secrets
from sparkwing.surfaces.secrets.base import SecretStore, SecretValue
from sparkwing.surfaces.secrets.dotenv import DotenvSecrets, parse_dotenv, quote_value
from sparkwing.surfaces.spec import SurfaceSpec

from .secrets_suite import AWKWARD_VALUES, SecretsConformance


class TestDotenvSecrets(SecretsConformance):
    @pytest.fixture
    def secrets(self, tmp_path: Path) -> SecretStore:
        conf = tmp_path / "conf" / "sparkwing"
        return DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".config" / "sparkwing"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_written_0600_in_0700_dir(conf: Path) -> None:
    store = DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")
    store.set("TOKEN", "t")
    store.set("REGION", "r", masked=False)
    assert _mode(conf / "secrets.env") == 0o600
    assert _mode(conf / "config.env") == 0o600
    assert _mode(conf) == 0o700
    assert sorted(p.name for p in conf.iterdir()) == ["config.env", "secrets.env"]  # no temps


def test_existing_permissive_file_is_tightened(conf: Path) -> None:
    conf.mkdir(parents=True)
    (conf / "secrets.env").write_text("OLD=1\n")
    (conf / "secrets.env").chmod(0o644)
    DotenvSecrets(conf / "secrets.env").set("NEW", "2")
    assert _mode(conf / "secrets.env") == 0o600


def test_values_land_in_the_right_file(conf: Path) -> None:
    store = DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")
    store.set("TOKEN", "masked-value")
    store.set("REGION", "eu", masked=False)
    assert "masked-value" in (conf / "secrets.env").read_text()
    assert "masked-value" not in (conf / "config.env").read_text()
    assert (conf / "config.env").read_text() == "REGION=eu\n"


def test_set_preserves_comments_and_other_lines(conf: Path) -> None:
    conf.mkdir(parents=True)
    path = conf / "secrets.env"
    path.write_text("# my secrets\nA=1\n\nexport B='two' # inline\nC=\"multi\nline\"\nD=4")
    store = DotenvSecrets(path)
    store.set("C", "replaced")
    store.set("E", "new")
    assert path.read_text() == (
        "# my secrets\nA=1\n\nexport B='two' # inline\nC=replaced\nD=4\nE=new\n"
    )
    assert store.delete("B") is True
    assert path.read_text() == "# my secrets\nA=1\n\nC=replaced\nD=4\nE=new\n"


def test_duplicate_names_last_wins_and_set_collapses(conf: Path) -> None:
    conf.mkdir(parents=True)
    path = conf / "secrets.env"
    path.write_text("X=first\nY=y\nX=second\n")
    store = DotenvSecrets(path)
    assert store.resolve("X") == SecretValue("second", True)
    store.set("X", "only")
    assert path.read_text() == "X=only\nY=y\n"


def test_plain_only_without_plain_file_is_refused(conf: Path) -> None:
    store = DotenvSecrets(conf / "secrets.env")
    with pytest.raises(UsageError, match="no plain config file"):
        store.set("REGION", "eu", masked=False)
    assert not (conf / "secrets.env").exists()


def test_secrets_file_wins_over_plain(conf: Path) -> None:
    conf.mkdir(parents=True)
    (conf / "secrets.env").write_text("SAME=secret\n")
    (conf / "config.env").write_text("SAME=plain\nONLY_PLAIN=p\n")
    store = DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")
    assert store.resolve("SAME") == SecretValue("secret", masked=True)
    assert store.resolve("ONLY_PLAIN") == SecretValue("p", masked=False)
    assert store.names() == [("ONLY_PLAIN", False), ("SAME", True)]


def test_missing_files_resolve_nothing(conf: Path) -> None:
    store = DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")
    assert store.resolve("X") is None
    assert store.names() == []
    assert store.delete("X") is False
    assert not conf.exists()


def test_describe_names_the_files(conf: Path) -> None:
    store = DotenvSecrets(conf / "secrets.env", plain_path=conf / "config.env")
    assert str(conf / "secrets.env") in store.describe()
    assert str(conf / "config.env") in store.describe()


def test_open_secrets_builds_dotenv(conf: Path) -> None:
    spec = SurfaceSpec(
        type="filesystem",
        path=str(conf / "secrets.env"),
        options={"plain_path": str(conf / "config.env")},
    )
    store = open_secrets(spec)
    assert isinstance(store, DotenvSecrets)
    store.set("P", "v", masked=False)
    assert (conf / "config.env").read_text() == "P=v\n"


# -- parser ------------------------------------------------------------------------------
PARSE_CASES = [
    ("A=1", {"A": "1"}),
    ("A = 1 ", {"A": "1"}),
    ("export A=1", {"A": "1"}),
    ("  export   A=1", {"A": "1"}),
    ("export=1", {"export": "1"}),
    ("A=", {"A": ""}),
    ("A=''", {"A": ""}),
    ('A=""', {"A": ""}),
    ("# comment\n\n   \nA=1\n# another", {"A": "1"}),
    ("A=1 # comment", {"A": "1"}),
    ("A=1#not-comment", {"A": "1#not-comment"}),
    ("A='x # y'", {"A": "x # y"}),
    ("A='x' # c", {"A": "x"}),
    ('A="x" # c', {"A": "x"}),
    ("A='a\\nb'", {"A": "a\\nb"}),
    ('A="a\\nb"', {"A": "a\nb"}),
    ('A="tab\\tq\\"bs\\\\"', {"A": 'tab\tq"bs\\'}),
    ('A="unknown \\q escape"', {"A": "unknown \\q escape"}),
    ('A="multi\nline\nvalue"\nB=2', {"A": "multi\nline\nvalue", "B": "2"}),
    ("A='multi\nsingle'\nB=2", {"A": "multi\nsingle", "B": "2"}),
    ("A=a=b=c", {"A": "a=b=c"}),
    ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("_x9=ok", {"_x9": "ok"}),
    ("A=\"has 'single' inside\"", {"A": "has 'single' inside"}),
    ("A=  spaced value  ", {"A": "spaced value"}),
    ("A=1\nA=2", {"A": "2"}),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parser(text: str, expected: dict[str, str]) -> None:
    entries = parse_dotenv(text, "f.env")
    assert {e.name: e.value for e in entries} == expected


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1A=x", 1, "not a valid name"),
        ("A-B=x", 1, "not a valid name"),
        ("OK=1\nNO_EQUALS", 2, "expected KEY=value"),
        ("=x", 1, "not a valid name"),
        ('A="unterminated\nB=1', 1, "unterminated"),
        ("A='x' trailing", 1, "unexpected text"),
    ],
)
def test_parser_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_dotenv(text, "/p/secrets.env")
    assert str(info.value).startswith(f"/p/secrets.env:{line}:")


def test_bad_file_is_a_config_error_on_resolve(conf: Path) -> None:
    conf.mkdir(parents=True)
    (conf / "secrets.env").write_text("GOOD=1\nthis is not dotenv\n")
    with pytest.raises(ConfigError, match=r"secrets\.env:2"):
        DotenvSecrets(conf / "secrets.env").resolve("GOOD")


@pytest.mark.parametrize("value", AWKWARD_VALUES)
def test_quote_value_roundtrips_through_parser(value: str) -> None:
    entries = parse_dotenv(f"K={quote_value(value)}\nNEXT=n\n")
    assert [(e.name, e.value) for e in entries] == [("K", value), ("NEXT", "n")]
