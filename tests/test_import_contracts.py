"""The import-linter contract types of our own (local_dev/import_contracts.py), on small import graphs."""

import grimp
import pytest

from local_dev.import_contracts import NoCyclesContract, OnlyImportersContract


def graph(*imports) -> grimp.ImportGraph:
    """A graph of `(importer, imported, line)` imports."""
    built = grimp.ImportGraph()
    for importer, imported, line in imports:
        for module in (importer, imported):
            built.add_module(module, is_squashed=module == "azure")
        built.add_import(importer=importer, imported=imported, line_number=1, line_contents=line)
    return built


def contract(kind, **fields):
    return kind(name="test", session_options={}, contract_options={key: value for key, value in fields.items()})


def test_only_the_listed_packages_may_import_the_subpackage():
    imports = graph(("app.storage.tables", "azure", "from azure.data.tables import TableClient"),
                    ("app.web", "azure", "import azure.functions as func"),
                    ("app.engine", "azure", "from azure.data.tables import UpdateMode"))
    check = contract(OnlyImportersContract, external="azure.data.tables", importers=["app.storage"]).check(
        imports, verbose=False)
    assert not check.kept
    assert [(found["importer"], found["line"]) for found in check.metadata["found"]] == [
        ("app.engine", "from azure.data.tables import UpdateMode")]


def test_a_package_named_like_the_listed_one_is_not_it():
    imports = graph(("app.storage_extra", "azure", "import azure.data.tables"))
    check = contract(OnlyImportersContract, external="azure.data.tables", importers=["app.storage"]).check(
        imports, verbose=False)
    assert not check.kept and check.metadata["found"][0]["importer"] == "app.storage_extra"


@pytest.mark.parametrize("imports, circle", [
    ((("app.a", "app.b", "import app.b"), ("app.b", "app.c", "import app.c")), None),
    ((("app.a", "app.b", "import app.b"), ("app.b", "app.c", "import app.c"), ("app.c", "app.a", "import app.a")),
     {"app.a", "app.b", "app.c"}),
    # Sibling packages that import each other's modules without a circle between modules.
    ((("app.lifecycle.engine", "app.storage.pauses", "x"), ("app.storage.pauses", "app.lifecycle.model", "x")), None),
    # A circle through a module outside the packages checked is not theirs.
    ((("app.a", "other.b", "x"), ("other.b", "app.a", "x")), None),
])
def test_a_circle_between_modules_is_found_and_named(imports, circle):
    check = contract(NoCyclesContract, packages=["app"]).check(graph(*imports), verbose=False)
    assert check.kept is (circle is None)
    if circle is not None:
        assert set(check.metadata["cycle"]) == circle
