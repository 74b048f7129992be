"""An import-linter contract type of our own: which modules may import a subpackage of an external package.

import-linter's `forbidden` contract can forbid only a whole external package (`azure`), and the
app needs `azure.functions`, `azure.core` and `azure.identity` in many places while only its storage
layer may talk to `azure.data.tables`. grimp keeps the text of every import line, so this contract
reads which `azure` imports name the subpackage.

    [[tool.importlinter.contracts]]
    type = "only_importers"
    external = "azure.data.tables"
    importers = ["shared.storage"]
"""

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class OnlyImportersContract(Contract):
    type_name = "only_importers"

    external = fields.StringField()
    importers = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        external = str(self.external)
        root = external.split(".")[0]
        allowed = tuple(str(name) for name in self.importers)
        found = []
        for importer in sorted(graph.find_modules_that_directly_import(root)):
            if any(importer == name or importer.startswith(name + ".") for name in allowed):
                continue
            for detail in graph.get_import_details(importer=importer, imported=root):
                line = detail["line_contents"]
                if f"{external} " in line + " " or f"{external}." in line:
                    found.append({"importer": importer, "line_number": detail["line_number"], "line": line})
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["found"]:
            output.print_error(f"{item['importer']}:{item['line_number']} imports {self.external}: {item['line']}")
            output.new_line()


class NoCyclesContract(Contract):
    """No module of `packages` imports itself through others. import-linter's own acyclic contract
    compares whole sibling packages, so a package whose data module is imported by storage while
    its engine imports storage would count as a circle; this one looks at modules (and names one
    circle at a time, as the standard library's graphlib finds it)."""

    type_name = "no_cycles"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        from graphlib import CycleError, TopologicalSorter

        roots = tuple(str(name) for name in self.packages)
        inside = sorted(m for m in graph.modules if any(m == r or m.startswith(r + ".") for r in roots))
        edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i in inside) for m in inside}
        try:
            TopologicalSorter(edges).prepare()
        except CycleError as circle:
            return ContractCheck(kept=False, metadata={"cycle": circle.args[1]})
        return ContractCheck(kept=True)

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("These modules import each other in a circle: " + " -> ".join(check.metadata["cycle"]))
        output.new_line()
