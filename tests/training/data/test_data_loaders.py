"""Each loader path on small files written by the tests: CSV (LF, CRLF, quoted newlines, literal escapes),
parquet, directory globbing with excludes, and the bad-input paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.data import DataValidationError
from training.data.io import read_table, resolve_paths, unescape_text

HEADER = "subject,body,answer,type,queue,priority,language\n"


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_csv_with_lf(tmp_path: Path) -> None:
    path = write(tmp_path / "lf.csv", HEADER + "Hi,Body one,Ans,Incident,IT Support,high,en\n")
    frame = read_table(path)
    assert list(frame.columns) == ["subject", "body", "answer", "type", "queue", "priority", "language"]
    assert frame.loc[0, "body"] == "Body one"
    assert frame.loc[0, "priority"] == "high"


def test_csv_with_crlf_and_quoted_newlines(tmp_path: Path) -> None:
    text = (
        HEADER
        + 'Hi,"Line one\nLine two",Ans,Incident,IT Support,low,de\n,Second,,Request,IT Support,medium,en\n'
    )
    frame = read_table(write(tmp_path / "crlf.csv", text, newline="\r\n"))
    assert len(frame) == 2
    assert frame.loc[0, "body"] == "Line one\nLine two"  # the quoted CRLF became LF
    assert frame.loc[1, "subject"] == ""  # empty field -> "", never NaN
    assert frame.loc[1, "priority"] == "medium"


def test_csv_with_literal_newline_escapes(tmp_path: Path) -> None:
    text = HEADER + 'Hi,"Dear team,\\n\\nit is \\""down\\"".\\r\\nBye",A\\nB,Incident,IT Support,high,en\n'
    frame = read_table(write(tmp_path / "escaped.csv", text))
    assert frame.loc[0, "body"] == 'Dear team,\n\nit is "down".\nBye'
    assert frame.loc[0, "answer"] == "A\nB"
    raw = read_table(tmp_path / "escaped.csv", unescape=False)
    assert str(raw.loc[0, "body"]).startswith("Dear team,\\n\\n")


def test_csv_with_bom_and_header_spacing(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff Subject , Body ,Priority\nS,B,low\n".encode())
    frame = read_table(path)
    assert list(frame.columns) == ["subject", "body", "priority"]


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "tickets.parquet"
    pd.DataFrame(
        {
            "subject": ["S", None],
            "body": ["Body\\nsecond line", "B2"],
            "priority": ["low", "high"],
            "id": [1, 2],
        }
    ).to_parquet(path)
    frame = read_table(path)
    assert frame["subject"].tolist() == ["S", ""]
    assert frame["body"].tolist() == ["Body\nsecond line", "B2"]
    assert frame["id"].tolist() == ["1", "2"]  # every value is a string


def test_unescape_text() -> None:
    assert unescape_text("a\\nb\\tc\r\nd\re") == "a\nb\tc\nd\ne"
    assert unescape_text("no escapes") == "no escapes"


def test_resolve_paths_globs_directories_with_excludes(tmp_path: Path) -> None:
    for name in ("b.csv", "a.parquet", "skip_me.csv", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nested.csv").write_text("x")
    files = resolve_paths([tmp_path], exclude=["skip_*"])
    assert [p.name for p in files] == ["a.parquet", "b.csv"]
    # An explicitly listed file is kept even if it matches an exclude pattern, and duplicates collapse.
    files = resolve_paths([tmp_path / "skip_me.csv", tmp_path / "skip_me.csv"], exclude=["skip_*"])
    assert [p.name for p in files] == ["skip_me.csv"]


def test_resolve_paths_recursive_skips_hidden_directories(tmp_path: Path) -> None:
    for name in ("top.csv", "data/shard-0.parquet", "data/deeper/shard-1.parquet", ".cache/hub/meta.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    files = resolve_paths([tmp_path], recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == [
        "data/deeper/shard-1.parquet",
        "data/shard-0.parquet",
        "top.csv",
    ]
    assert resolve_paths([tmp_path]) == [tmp_path / "top.csv"]


def test_resolve_paths_expands_glob_patterns(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv", "c.parquet", "d.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in resolve_paths([str(tmp_path / "*.csv")])] == ["a.csv", "b.csv"]
    assert [p.name for p in resolve_paths([str(tmp_path / "[bc].*")])] == ["b.csv", "c.parquet"]
    with pytest.raises(DataValidationError, match=r"matches no \.csv or \.parquet file"):
        resolve_paths([str(tmp_path / "*.json")])


def test_resolve_paths_falls_back_to_search_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "root" / "data" / "t.csv").write_text("x")
    monkeypatch.chdir(tmp_path)
    expected = [tmp_path / "root" / "data" / "t.csv"]
    assert resolve_paths(["data/t.csv"], search_roots=[tmp_path / "root"]) == expected
    assert resolve_paths(["data/*.csv"], search_roots=[tmp_path / "root"]) == expected


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["does/not/exist.csv"], "data path not found: does/not/exist.csv"),
        ([], "data.paths is empty"),
    ],
)
def test_resolve_paths_errors(paths: list[str], message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        resolve_paths(paths)


def test_resolve_paths_refuses_other_file_types_and_empty_dirs(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(DataValidationError, match="unsupported file type"):
        resolve_paths([tmp_path / "t.json"])
    with pytest.raises(DataValidationError, match=r"holds no \.csv or \.parquet"):
        resolve_paths([tmp_path])


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", "")
    with pytest.raises(DataValidationError, match=r"empty\.csv: the file is empty"):
        read_table(path)


def test_header_only_file(tmp_path: Path) -> None:
    path = write(tmp_path / "header.csv", HEADER)
    with pytest.raises(DataValidationError, match="header but no data rows"):
        read_table(path)


def test_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.csv", HEADER + 'Hi,"never closed,Ans,Incident,IT Support,high,en\n')
    with pytest.raises(DataValidationError, match=r"broken\.csv: broken CSV .*quoted field is closed"):
        read_table(path)


def test_row_with_extra_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", HEADER + 'Hi,"a","b"c,x,Incident,IT Support,high,en,extra\n')
    with pytest.raises(DataValidationError, match=r"wide\.csv: broken CSV \(.*fields"):
        read_table(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "Hi,Caf\xe9,A,Incident,IT Support,high,fr\n").encode("latin-1"))
    with pytest.raises(DataValidationError, match="not UTF-8"):
        read_table(path)


def test_broken_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataValidationError, match=r"broken\.parquet: not a readable parquet file"):
        read_table(path)
