"""mapping_files(): the one way bridge lists mapping and test files."""

from __future__ import annotations

from pathlib import Path

from bridge.mappings.loader import mapping_files


def make(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x: 1\n")
    return folder


def test_a_folder_gives_its_yaml_files_of_the_kind_in_name_order(tmp_path: Path) -> None:
    d = make(tmp_path / "m", "b.yaml", "a.yaml", "a.tests.yaml", "notes.txt", "c.yml")
    assert mapping_files([d]) == [d / "a.tests.yaml", d / "a.yaml", d / "b.yaml"]
    assert mapping_files([d], "mappings") == [d / "a.yaml", d / "b.yaml"]
    assert mapping_files([d], "tests") == [d / "a.tests.yaml"]


def test_a_file_is_itself_and_a_mapping_names_its_test_file(tmp_path: Path) -> None:
    d = make(tmp_path / "m", "a.yaml", "a.tests.yaml")
    missing = d / "gone.yaml"
    assert mapping_files([d / "a.tests.yaml", missing], "mappings") == [
        d / "a.tests.yaml",
        missing,
    ]
    # a.yaml and a.tests.yaml name the same test file: it is listed once.
    assert mapping_files([d / "a.yaml", d / "a.tests.yaml", missing], "tests") == [
        d / "a.tests.yaml",
        d / "gone.tests.yaml",
    ]
    # Other kinds list what they are given, as given.
    assert mapping_files([d / "a.yaml", d / "a.yaml"]) == [d / "a.yaml", d / "a.yaml"]


def test_layers_the_highest_wins_mappings_then_tests_missing_first(tmp_path: Path) -> None:
    shipped = make(tmp_path / "shipped", "stripe.yaml", "stripe.tests.yaml", "github.yaml")
    own = make(tmp_path / "own", "stripe.yaml", "shop.yaml", "shop.tests.yaml")
    gone = tmp_path / "gone"
    assert mapping_files([shipped, own, gone], layered=True) == [
        gone,
        shipped / "github.yaml",
        own / "shop.yaml",
        own / "stripe.yaml",
        own / "shop.tests.yaml",
        shipped / "stripe.tests.yaml",
    ]
    assert mapping_files([shipped, own], "mappings", layered=True) == [
        shipped / "github.yaml",
        own / "shop.yaml",
        own / "stripe.yaml",
    ]
